"""Starting a container's shim: ``posix_spawn`` into a new session, and reaping it without a thread.

A container instance runs under a tiny shell shim (:data:`SHIM`): ``runc run`` in the foreground
with the container's output appended to its log file, then the exit status written to the bundle's
``exit`` file (atomically, through ``exit.tmp``). The shim is started in its own session so it
survives the agent; the agent only has to reap it when it exits (:class:`ShimReaper`, a pidfd in
the event loop), since it is the shim's parent.

:func:`spawn_detached` calls posix_spawn(3) through ctypes, which releases the GIL while the child
is created and exec'd; the subprocess module holds it for the whole vfork+exec, which under a burst
(2 cores busy with runc) stalled the agent's event loop for milliseconds per container.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os

# Environment: C_RUNC, C_ROOT (runc --root), C_BUNDLE, C_ID (container ID), C_LOG (log file).
SHIM = r"""
"$C_RUNC" --root "$C_ROOT" run --bundle "$C_BUNDLE" --pid-file "$C_BUNDLE/pid" "$C_ID" </dev/null >>"$C_LOG" 2>&1
rc=$?
printf '%s %s\n' "$rc" "$(date +%s.%N)" > "$C_BUNDLE/exit.tmp"
mv -f "$C_BUNDLE/exit.tmp" "$C_BUNDLE/exit"
"""

_libc = ctypes.CDLL(None, use_errno=True)
_POSIX_SPAWN_SETSIGDEF, _POSIX_SPAWN_SETSIGMASK, _POSIX_SPAWN_SETSID = 0x04, 0x08, 0x80
for _f in ("posix_spawn_file_actions_init", "posix_spawn_file_actions_destroy"):
    getattr(_libc, _f).argtypes = [ctypes.c_void_p]
_libc.posix_spawn_file_actions_addopen.argtypes = [
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_char_p,
    ctypes.c_int,
    ctypes.c_uint,
]
for _f in ("posix_spawnattr_init", "posix_spawnattr_destroy", "sigemptyset", "sigfillset"):
    getattr(_libc, _f).argtypes = [ctypes.c_void_p]
_libc.posix_spawnattr_setflags.argtypes = [ctypes.c_void_p, ctypes.c_short]
_libc.posix_spawnattr_setsigmask.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.posix_spawnattr_setsigdefault.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.posix_spawn.argtypes = [
    ctypes.POINTER(ctypes.c_int),
    ctypes.c_char_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_char_p),
    ctypes.POINTER(ctypes.c_char_p),
]


def spawn_detached(argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` in a new session with stdio on /dev/null and default signal dispositions.

    Returns the pid; the caller must reap it. Only O_CLOEXEC descriptors are open in the agent
    (Python's default), so nothing leaks into the child.
    """
    fa = ctypes.create_string_buffer(1024)  # posix_spawn_file_actions_t is 80 bytes on glibc
    attr = ctypes.create_string_buffer(1024)  # posix_spawnattr_t is 336
    sigs = ctypes.create_string_buffer(256)  # sigset_t is 128
    _libc.posix_spawn_file_actions_init(fa)
    _libc.posix_spawnattr_init(attr)
    try:
        for fd, flags in ((0, os.O_RDONLY), (1, os.O_WRONLY), (2, os.O_WRONLY)):
            rc = _libc.posix_spawn_file_actions_addopen(fa, fd, b"/dev/null", flags, 0)
            if rc:
                raise OSError(rc, os.strerror(rc))
        _libc.sigemptyset(sigs)
        _libc.posix_spawnattr_setsigmask(attr, sigs)
        _libc.sigfillset(sigs)  # undo Python's SIG_IGN for SIGPIPE/SIGXFSZ in the child
        _libc.posix_spawnattr_setsigdefault(attr, sigs)
        _libc.posix_spawnattr_setflags(
            attr, _POSIX_SPAWN_SETSID | _POSIX_SPAWN_SETSIGMASK | _POSIX_SPAWN_SETSIGDEF
        )
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
        c_env = (ctypes.c_char_p * (len(env) + 1))(*[os.fsencode(f"{k}={v}") for k, v in env.items()], None)
        pid = ctypes.c_int()
        rc = _libc.posix_spawn(ctypes.byref(pid), os.fsencode(argv[0]), fa, attr, c_argv, c_env)
        if rc:
            raise OSError(rc, f"cannot start {argv[0]}: {os.strerror(rc)}")
        return pid.value
    finally:
        _libc.posix_spawn_file_actions_destroy(fa)
        _libc.posix_spawnattr_destroy(attr)


class ShimReaper:
    """Reaps shims when they exit: one pidfd per shim watched by the event loop (no thread, no SIGCHLD)."""

    def __init__(self) -> None:
        self._pidfds: dict[int, int] = {}  # shim pid -> pidfd watched for its exit

    def watch(self, pid: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            pfd = os.pidfd_open(pid)
        except OSError:  # already reaped, or no pidfd support: reap now if it is a zombie
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return

        def exited() -> None:
            loop.remove_reader(pfd)
            os.close(pfd)
            self._pidfds.pop(pid, None)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)

        loop.add_reader(pfd, exited)
        self._pidfds[pid] = pfd

    def close(self) -> None:
        """Stop watching (the shims keep running; a later agent adopts their containers)."""
        loop = asyncio.get_running_loop()
        for pfd in self._pidfds.values():
            loop.remove_reader(pfd)
            os.close(pfd)
        self._pidfds.clear()
