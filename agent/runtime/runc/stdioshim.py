"""The shim of a container started with ``stdin`` or ``tty``: it keeps the container's stdio open for ``attach``.

The ordinary shim (:data:`agent.runtime.runc.spawn.SHIM`) runs ``runc run`` with stdin on
``/dev/null`` and the output appended to the log. A container that asks for ``stdin: true`` or
``tty: true`` needs someone to hold its stdin and (for a TTY) its terminal for as long as it runs,
independently of the agent, so that ``kubectl attach`` can join it at any time. This script is
that someone: run as ``python -I stdioshim.py`` (standard library only, no package imports, so it
starts fast) in its own session with the same environment as the ordinary shim (``C_RUNC``,
``C_ROOT``, ``C_BUNDLE``, ``C_ID``, ``C_LOG``) plus ``C_TTY``, ``C_STDIN`` and ``C_STDIN_ONCE``, it

* runs ``runc run`` in the foreground with its stdio on a pseudo-terminal (``tty``; runc copies
  between it and the container's terminal) or on pipes;
* appends everything the container prints to the log file, as the ordinary shim does;
* listens on ``attach.sock`` in the bundle (mode 0600) and relays, in frames of
  ``[type:1][length:4 big-endian][payload]``: output to every attached client (type 1 stdout,
  2 stderr), and from clients type 0 (stdin), 4 (resize, ``{"Width","Height"}``) and 255 (close
  stdin; on a terminal the EOF character). With ``stdinOnce`` stdin closes when the first client
  that wrote to it leaves;
* writes the ``exit`` record exactly like the ordinary shim when runc returns (128+signal when
  runc itself was killed).

Everything is non-blocking in one ``selectors`` loop: a client that stops reading is dropped once
1 MiB is queued for it, so a stuck client never stalls the container's output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import tty as tty_mod

HEAD = struct.Struct(">BI")
MAX_CLIENT_BACKLOG = 1 << 20


class Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = b""
        self.out = bytearray()
        self.wrote_stdin = False


def main() -> int:
    env = os.environ
    bundle = env["C_BUNDLE"]
    tty = env.get("C_TTY") == "1"
    want_stdin = env.get("C_STDIN") == "1"
    stdin_once = env.get("C_STDIN_ONCE") == "1"
    os.chdir(bundle)
    with contextlib.suppress(FileNotFoundError):
        os.unlink("attach.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    listener.bind("attach.sock")  # relative: the bundle path may exceed sun_path
    os.umask(old)
    listener.listen(16)
    listener.setblocking(False)
    log = open(env["C_LOG"], "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    devnull = os.open(os.devnull, os.O_RDWR)
    outputs: dict[int, int] = {}  # fd -> channel
    if tty:
        master, slave = os.openpty()
        tty_mod.setraw(slave)  # runc relays the container's terminal as is: no second CR/LF translation
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        stdio = (slave, slave, slave)
        stdin_fd = master
        outputs[master] = 1
    else:
        in_r, in_w = os.pipe() if want_stdin else (devnull, -1)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        stdio = (in_r, out_w, err_w)
        stdin_fd = in_w
        outputs[out_r] = 1
        outputs[err_r] = 2
    argv = [env["C_RUNC"], "--root", env["C_ROOT"], "run", "--bundle", bundle]
    argv += ["--pid-file", os.path.join(bundle, "pid"), env["C_ID"]]
    proc = subprocess.Popen(argv, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], close_fds=True)
    for fd in set(stdio):
        if fd != devnull:
            os.close(fd)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    for fd in outputs:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, "output")
    pidfd = os.pidfd_open(proc.pid)
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    stdin_buf = bytearray()
    stdin_closing = False
    if stdin_fd >= 0:
        os.set_blocking(stdin_fd, False)
    clients: dict[int, Client] = {}

    def close_stdin() -> None:
        nonlocal stdin_fd, stdin_closing
        if tty:
            stdin_buf.extend(b"\x04")
            return
        stdin_closing = True
        if not stdin_buf and stdin_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(stdin_fd)
            stdin_fd = -1

    def update_stdin_interest() -> None:
        if stdin_fd < 0 or tty:
            return
        key = sel.get_map().get(stdin_fd)
        if stdin_buf and key is None:
            sel.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
        elif not stdin_buf and key is not None:
            sel.unregister(stdin_fd)

    def write_pending(fd: int) -> None:
        """Write as much of the pending stdin as ``fd`` takes now (a pipe or the terminal)."""
        while stdin_buf and fd >= 0:
            try:
                n = os.write(fd, stdin_buf)
            except BlockingIOError:
                break
            except OSError:
                stdin_buf.clear()
                break
            del stdin_buf[:n]

    def flush_stdin() -> None:
        nonlocal stdin_fd
        write_pending(stdin_fd)
        if not stdin_buf and stdin_closing and stdin_fd >= 0:
            update_stdin_interest()
            with contextlib.suppress(OSError):
                os.close(stdin_fd)
            stdin_fd = -1
            return
        update_stdin_interest()

    def drop(c: Client) -> None:
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(c.sock)
        clients.pop(c.sock.fileno(), None)
        c.sock.close()
        if stdin_once and c.wrote_stdin:
            close_stdin()

    def send(c: Client, frame: bytes) -> None:
        c.out += frame
        flush_client(c)

    def flush_client(c: Client) -> None:
        while c.out:
            try:
                n = c.sock.send(c.out)
            except BlockingIOError:
                break
            except OSError:
                drop(c)
                return
            del c.out[:n]
        if len(c.out) > MAX_CLIENT_BACKLOG:
            drop(c)
            return
        sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)

    def on_client_data(c: Client) -> None:
        try:
            data = c.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            drop(c)
            return
        c.inbuf += data
        while len(c.inbuf) >= HEAD.size:
            typ, n = HEAD.unpack_from(c.inbuf)
            if len(c.inbuf) < HEAD.size + n:
                break
            payload = c.inbuf[HEAD.size : HEAD.size + n]
            c.inbuf = c.inbuf[HEAD.size + n :]
            if typ == 0 and stdin_fd >= 0 and not stdin_closing:
                c.wrote_stdin = True
                stdin_buf.extend(payload)
                flush_stdin() if not tty else flush_tty()
            elif typ == 255:
                c.wrote_stdin = True
                close_stdin()
                if tty:
                    flush_tty()
            elif typ == 4 and tty:
                with contextlib.suppress(ValueError, TypeError, OSError, AttributeError):
                    size = json.loads(payload)
                    fcntl.ioctl(
                        master,
                        termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(size["Height"]), int(size["Width"]), 0, 0),
                    )
                    os.kill(proc.pid, signal.SIGWINCH)  # runc copies the size to the container's terminal

    def flush_tty() -> None:
        write_pending(master)

    def on_output(fd: int) -> bool:
        """Read what is there; False once the stream has ended."""
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the terminal's last slave is closed
            data = b""
        if not data:
            sel.unregister(fd)
            os.close(fd)
            outputs.pop(fd, None)
            return False
        with contextlib.suppress(OSError):
            log.write(data)
        frame = HEAD.pack(outputs[fd], len(data)) + data
        for c in list(clients.values()):
            send(c, frame)
        return True

    exited = False
    deadline = 0.0
    while True:
        if exited and (not outputs or time.monotonic() > deadline):
            break
        timeout = 0.2 if exited else (0.2 if tty and stdin_buf else None)
        for key, _ in sel.select(timeout):
            what = key.data
            if what == "listen":
                try:
                    sock, _addr = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                c = Client(sock)
                clients[sock.fileno()] = c
                sel.register(sock, selectors.EVENT_READ, c)
            elif what == "output":
                on_output(key.fd)
            elif what == "exit":
                sel.unregister(pidfd)
                exited = True
                deadline = time.monotonic() + 2.0  # output still buffered in the pipes/terminal
            elif what == "stdin":
                flush_stdin()
            elif isinstance(what, Client):
                c = what
                if c.sock.fileno() not in clients:
                    continue
                if key.events & selectors.EVENT_READ:
                    on_client_data(c)
                if c.sock.fileno() in clients and c.out:
                    flush_client(c)
        if tty and stdin_buf:
            flush_tty()
    rc = proc.wait()
    code = rc if rc >= 0 else 128 - rc
    for c in list(clients.values()):
        with contextlib.suppress(OSError):
            c.sock.setblocking(True)
            c.sock.settimeout(1.0)
            c.sock.sendall(bytes(c.out))
        c.sock.close()
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink("attach.sock")
    with open("exit.tmp", "w") as f:
        f.write(f"{code} {time.time():.9f}\n")
    os.replace("exit.tmp", "exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
