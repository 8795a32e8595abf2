"""The common entry point of a role process (``centaurusctl serve ROLE``).

Every role does the same around its own ``serve()`` coroutine: configure logging with the
role's name in each line, install uvloop when it is there, turn SIGTERM and SIGINT into a
stop event the role waits on, set the role's umask (``0o077`` - what a role creates is its
owner's alone - except the node agent's, see :mod:`ctl.util.private_files`), run the event loop,
and turn an ``OSError`` at start-up (a port in use, a missing socket directory) into one
``error: ROLE: ...`` line and exit code 1.
:func:`run_daemon` is that frame; the role passes a coroutine function that receives the
stop event.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from ctl.util.private_files import role_umask

ROLE_UMASK = -1  # run_daemon's default: the role's umask (ctl.util.private_files.role_umask)


def setup_logging(role: str, level: str = "info") -> None:
    """Log lines as ``TIME ROLE LEVEL LOGGER MESSAGE`` at ``level``."""
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s {role} %(levelname)s %(name)s %(message)s", force=True
    )


def install_uvloop() -> None:
    """Use uvloop's event loop when the package is installed (it is a dependency; tests may lack it)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass


def stop_event_on_signals(
    signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> asyncio.Event:
    """An event set when the process receives one of ``signals`` (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_daemon(
    role: str,
    main: Callable[[asyncio.Event], Awaitable[int | None]],
    log_level: str = "info",
    *,
    configure_logging: bool = True,
    umask: int | None = ROLE_UMASK,
    use_uvloop: bool = True,
) -> int:
    """Run ``main(stop)`` on a fresh event loop until it returns; its int result is the exit code.

    ``stop`` is set on SIGTERM/SIGINT. An ``OSError`` escaping ``main`` prints one line and
    returns 1; ``KeyboardInterrupt`` before the handlers are installed returns 130. The
    process umask becomes ``umask`` first: by default the role's (0o077, the agent's 0o022, see
    :func:`ctl.util.private_files.role_umask`); ``None`` leaves it as inherited. ``use_uvloop=False``
    keeps asyncio's own loop, for a role whose libraries uvloop refuses (pyroute2's netlink
    sockets: "invalid family 16").
    """
    if umask == ROLE_UMASK:
        umask = role_umask(role)
    if umask is not None:
        os.umask(umask)
    if configure_logging:
        setup_logging(role, log_level)
    if use_uvloop:
        install_uvloop()

    async def _main() -> int | None:
        return await main(stop_event_on_signals())

    try:
        rc = asyncio.run(_main())
    except OSError as e:
        print(f"error: {role}: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)
