"""Interactive streams into runc containers: exec with pipes or a PTY, attach, and TCP in the pod's netns.

The node agent relays these to the API server (:mod:`agent.node.streams`); each is a
:class:`StdioSession`: output arrives as ``(channel, bytes)`` pairs on :attr:`StdioSession.output`
(channel 1 stdout, 2 stderr; a ``None`` once every output stream has ended), input goes in with
:meth:`~StdioSession.write_stdin`, :meth:`~StdioSession.close_stdin` and
:meth:`~StdioSession.resize`, and :meth:`~StdioSession.wait` gives the exit code.

* :func:`start_exec` runs ``runc exec`` in the foreground. With a TTY, runc's own stdio is the slave
  side of a pseudo-terminal the agent holds the master of: runc puts that terminal in raw mode and
  copies between it and the container's terminal, so the agent reads and writes the master, and a
  resize is the window size set on the master followed by SIGWINCH to runc (which copies the size
  into the container's terminal). Without a TTY it is three pipes.
* :func:`start_attach` connects to the container's stdio shim (:mod:`agent.runtime.runc.stdioshim`,
  run for containers with ``stdin`` or ``tty``) over its ``attach.sock``, a framed protocol of
  ``[type][length:4][payload]`` whose types are the channel numbers. The socket path is reached
  through ``/proc/self/fd/N/`` of the bundle directory so that deep state directories do not hit
  the 108-byte limit of Unix socket paths.
* :func:`connect_in_netns` opens a TCP connection to ``127.0.0.1:PORT`` from inside the pod's
  network namespace (a fresh thread enters it, connects, and hands the socket back).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import struct
import termios
import tty as ttymod
from pathlib import Path

from agent.cni.netlink import enter_netns_here, run_in_fresh_thread
from agent.runtime.base import RuntimeError_

FRAME = struct.Struct(">BI")  # attach socket frames: type (a channel number), payload length
ATTACH_SOCKET = "attach.sock"
READ_CHUNK = 32 * 1024


class StdioSession:
    """A process's standard streams as the agent relays them (see the module docstring)."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.output: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=64)
        self._open_outputs = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def _pump(self, channel: int, reader: asyncio.StreamReader) -> None:
        self._open_outputs += 1

        async def run() -> None:
            try:
                while True:
                    try:
                        data = await reader.read(READ_CHUNK)
                    except OSError:  # EIO from a pty master once the terminal is gone
                        data = b""
                    if not data:
                        break
                    await self.output.put((channel, data))
            finally:
                self._open_outputs -= 1
                if self._open_outputs == 0:
                    await self.output.put(None)

        t = asyncio.get_running_loop().create_task(run())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def write_stdin(self, data: bytes) -> None:
        raise NotImplementedError

    async def close_stdin(self) -> None:
        raise NotImplementedError

    def resize(self, width: int, height: int) -> None:
        raise NotImplementedError

    async def wait(self) -> int | None:
        raise NotImplementedError

    async def close(self) -> None:
        """End the session (the client went away): stop the process or detach."""
        for t in list(self._tasks):
            t.cancel()


async def _reader_for_fd(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * READ_CHUNK)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
    return reader


async def _writer_for_fd(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", 0)
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


def set_window(fd: int, width: int, height: int) -> None:
    """Set a terminal's window size (columns ``width``, rows ``height``)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(0, height), max(0, width), 0, 0))


class ExecSession(StdioSession):
    """``runc exec`` in the foreground, on pipes or on a pseudo-terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__(tty)
        self.proc: asyncio.subprocess.Process | None = None
        self.master = -1
        self._stdin: asyncio.StreamWriter | None = None
        self._size: tuple[int, int] | None = None

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is None or self._stdin.is_closing():
            return
        self._stdin.write(data)
        with contextlib.suppress(ConnectionError, OSError):
            await self._stdin.drain()

    async def close_stdin(self) -> None:
        if self._stdin is None or self._stdin.is_closing():
            return
        if self.tty:
            # a terminal has no half-close: end-of-file is the EOF character, as a user types it
            await self.write_stdin(b"\x04")
            return
        self._stdin.close()
        self._stdin = None

    def resize(self, width: int, height: int) -> None:
        if not self.tty or self.master < 0:
            return
        self._size = (width, height)
        with contextlib.suppress(OSError):
            set_window(self.master, width, height)
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGWINCH)  # runc copies the size into the container's terminal

    async def wait(self) -> int | None:
        assert self.proc is not None
        return await self.proc.wait()

    async def close(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            # runc forwards the signal to the exec'd process; SIGKILL only if it ignores it
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGHUP if self.tty else signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._stdin is not None:
            self._stdin.close()
        await super().close()


async def start_exec(
    runc: str, runc_root: str, container_id: str, argv: list[str], *, tty: bool, stdin: bool
) -> ExecSession:
    """Start ``runc exec`` of ``argv`` in the container; its stdio is relayed by the returned session."""
    s = ExecSession(tty)
    base = [runc, "--root", runc_root, "exec", *(["--tty"] if tty else []), container_id, *argv]
    if tty:
        master, slave = os.openpty()
        set_window(master, 80, 24)
        ttymod.setraw(slave)  # runc relays the container's terminal as is: no second CR/LF translation
        try:
            s.proc = await asyncio.create_subprocess_exec(
                *base, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        s.master = master
        s._pump(1, await _reader_for_fd(os.dup(master)))
        s._stdin = await _writer_for_fd(os.dup(master))
        os.set_blocking(master, False)
        return s
    s.proc = await asyncio.create_subprocess_exec(
        *base,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert s.proc.stdout is not None and s.proc.stderr is not None
    s._pump(1, s.proc.stdout)
    s._pump(2, s.proc.stderr)
    s._stdin = s.proc.stdin
    return s


class AttachSession(StdioSession):
    """A connection to a container's stdio shim: its output from now on, its stdin, its terminal size."""

    def __init__(self, tty: bool) -> None:
        super().__init__(tty)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def _send(self, typ: int, payload: bytes) -> None:
        w = self.writer
        if w is None or w.is_closing():
            return
        w.write(FRAME.pack(typ, len(payload)) + payload)
        with contextlib.suppress(ConnectionError, OSError):
            await w.drain()

    async def write_stdin(self, data: bytes) -> None:
        await self._send(0, data)

    async def close_stdin(self) -> None:
        """An attach session's input ending leaves the container's stdin open (as kubelet does);
        with ``stdinOnce`` the shim closes it when this client leaves."""

    def resize(self, width: int, height: int) -> None:
        t = asyncio.get_running_loop().create_task(
            self._send(4, json.dumps({"Width": width, "Height": height}).encode())
        )
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _read_frames(self) -> None:
        assert self.reader is not None
        try:
            while True:
                head = await self.reader.readexactly(FRAME.size)
                typ, n = FRAME.unpack(head)
                payload = await self.reader.readexactly(n) if n else b""
                if typ in (1, 2) and payload:
                    await self.output.put((typ if not self.tty else 1, payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            await self.output.put(None)
            if not self._ended.done():
                self._ended.set_result(None)

    async def wait(self) -> int | None:
        await self._ended
        return None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        await super().close()


async def start_attach(bundle: Path, *, tty: bool) -> AttachSession:
    """Attach to the stdio shim of the container instance in ``bundle``."""
    s = AttachSession(tty)
    dfd = os.open(bundle, os.O_PATH | os.O_DIRECTORY)
    try:
        path = f"/proc/self/fd/{dfd}/{ATTACH_SOCKET}"
        try:
            s.reader, s.writer = await asyncio.open_unix_connection(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise RuntimeError_(
                "NotSupported",
                "the container was not started with stdin or tty: there is nothing to attach to",
            ) from None
    finally:
        os.close(dfd)
    t = asyncio.get_running_loop().create_task(s._read_frames())
    s._tasks.add(t)
    t.add_done_callback(s._tasks.discard)
    return s


async def connect_in_netns(netns_path: str | None, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP socket connected to ``127.0.0.1:port`` inside the network namespace at ``netns_path``
    (the agent's own namespace when ``None``: hostNetwork pods)."""

    def connect() -> socket.socket:
        if netns_path:
            enter_netns_here(Path(netns_path))
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.settimeout(None)
        sock.setblocking(False)
        return sock

    try:
        return await run_in_fresh_thread(connect)
    except OSError as e:
        raise RuntimeError_(
            "PortForwardFailed", f"cannot connect to port {port} in the pod: {e.strerror or e}"
        ) from None
