"""Counting the child processes a piece of test code starts, through Python's audit hooks.

Every way Python starts a program raises an audit event before it happens (``subprocess.Popen``,
which asyncio's subprocesses and ``subprocess.run`` go through, ``os.posix_spawn``, ``os.fork``,
``os.system``, ``os.exec``...). One audit hook, installed on first import, hands those events to
whoever listens:

* :func:`spawned` is a context manager yielding the list of programs started while it is open
  (``argv[0]`` or the event name), so a test proves a cache or an idempotent call with
  ``assert not started`` instead of a wall-time bound that a loaded machine breaks.
* :func:`forbid` makes any start raise :class:`ProcessForbidden` at once (and records the attempt);
  the marker plugin uses it around tests marked ``unit`` so a test that starts processes cannot hide
  in the fast loop.

Audit hooks cannot be removed, so the hook stays installed and costs one dict lookup per event.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.system",
        "os.exec",
        "pty.spawn",
    }
)

_listeners: list[list[str]] = []
_forbidden: list[tuple[str, list[str]]] = []  # (reason, refused starts); non-empty: starting raises


class ProcessForbidden(RuntimeError):
    """A process was started where the test's markers promise none."""


def _program(event: str, args: tuple[Any, ...]) -> str:
    if event == "subprocess.Popen" and len(args) >= 2:
        argv = args[1]
        if isinstance(argv, (list, tuple)) and argv:
            return " ".join(str(a) for a in argv[:4])
        return str(argv or args[0])
    if args and isinstance(args[0], (str, bytes)):
        return f"{event} {args[0]!r}"
    return event


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in SPAWN_EVENTS:
        return
    what = _program(event, args)
    if _forbidden:
        reason, refused = _forbidden[-1]
        refused.append(what)
        raise ProcessForbidden(f"{reason}: it started {what!r}")
    for listener in _listeners:
        listener.append(what)


if not getattr(sys, "_centaurus_spawn_hook", False):
    sys.addaudithook(_hook)
    sys._centaurus_spawn_hook = True  # type: ignore[attr-defined]


@contextmanager
def spawned() -> Iterator[list[str]]:
    """Yield a list that collects every program started (in any thread) until the block ends."""
    started: list[str] = []
    _listeners.append(started)
    try:
        yield started
    finally:
        _listeners.remove(started)


@contextmanager
def forbid(reason: str) -> Iterator[list[str]]:
    """Make starting any process inside the block raise :class:`ProcessForbidden`.

    ``reason`` is the exception's message; the yielded list collects the refused starts, so a caller
    can tell a refusal the code under test swallowed. Refused starts are not reported to
    :func:`spawned` listeners (nothing was started) nor to enclosing ``forbid`` blocks.
    """
    entry: tuple[str, list[str]] = (reason, [])
    _forbidden.append(entry)
    try:
        yield entry[1]
    finally:
        _forbidden.remove(entry)
