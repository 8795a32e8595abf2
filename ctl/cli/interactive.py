"""The terminal side of ``centaurusctl exec -i/-t``: local stdio relayed over a v5 exec stream.

:func:`run_session` takes the WebSocket :meth:`Client.exec_stream
<ctl.client.aio.Client.exec_stream>` opened and relays: the local stdin (read without blocking
the event loop) to channel 0, its end to the v5 close signal ``[255, 0]``; channels 1 and 2 to
the local stdout and stderr; with a TTY, the local terminal in raw mode for the session (restored
however it ends) and its size on channel 4 at the start and on every SIGWINCH. It returns the exit
code the final Status on channel 3 carries (:func:`ctl.types.streaming.exit_code_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import termios
import tty as ttymod
from typing import Any

import aiohttp
import orjson

from ctl.types import streaming as sp


def _size_message() -> bytes:
    try:
        cols, rows = os.get_terminal_size(sys.stdin.fileno())  # the terminal's own, not $COLUMNS
    except OSError:
        cols, rows = shutil.get_terminal_size()
    return bytes([sp.RESIZE]) + orjson.dumps({"Width": cols, "Height": rows})


async def run_session(ws: aiohttp.ClientWebSocketResponse, stdin: bool, tty: bool) -> int:
    loop = asyncio.get_running_loop()
    status: dict[str, Any] | None = None
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if tty else None
    pending: set[asyncio.Task[Any]] = set()

    def spawn(coro: Any) -> None:
        t = loop.create_task(coro)
        pending.add(t)
        t.add_done_callback(pending.discard)

    def on_stdin() -> None:
        try:
            data = os.read(fd, 32 * 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            spawn(ws.send_bytes(bytes([sp.STDIN]) + data))
        else:
            loop.remove_reader(fd)
            spawn(ws.send_bytes(bytes([sp.CLOSE, sp.STDIN])))

    try:
        if tty:
            ttymod.setraw(fd)
            await ws.send_bytes(_size_message())
            loop.add_signal_handler(signal.SIGWINCH, lambda: spawn(ws.send_bytes(_size_message())))
        if stdin:
            loop.add_reader(fd, on_stdin)
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            ch, payload = msg.data[0], msg.data[1:]
            if ch == sp.STDOUT:
                sys.stdout.buffer.write(payload)
                sys.stdout.buffer.flush()
            elif ch == sp.STDERR:
                sys.stderr.buffer.write(payload)
                sys.stderr.buffer.flush()
            elif ch == sp.ERROR:
                with contextlib.suppress(ValueError):
                    got = orjson.loads(payload)
                    status = got if isinstance(got, dict) else None
    finally:
        if stdin:
            loop.remove_reader(fd)
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)
            assert saved is not None
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        for t in pending:
            t.cancel()
        await ws.close()
    if status is None:
        raise ConnectionError("the exec stream ended without a status")
    code = sp.exit_code_of(status)
    if code and status.get("reason") != "NonZeroExitCode":
        sys.stderr.write(f"error: {status.get('message') or 'exec failed'}\n")
    return code
