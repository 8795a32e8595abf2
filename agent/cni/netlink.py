"""In-process network namespace and link plumbing over netlink (no ``ip`` processes).

:mod:`agent.cni.bridge` used to shell out to iproute2 about fourteen times per pod; on a 2-core node
that process churn was most of a pod's start-up cost. This module does the same work in the agent's
own process:

* **Named network namespaces** the way ``ip netns add`` makes them: ``/run/netns`` is made a shared
  mount point once, an empty file ``/run/netns/NAME`` is created, and a thread that has
  ``unshare(CLONE_NEWNET)`` bind-mounts ``/proc/thread-self/ns/net`` onto it. ``ip netns`` and
  ``nsenter --net=/run/netns/NAME`` see such a namespace exactly like one made by ``ip``. Removal is
  ``umount2(MNT_DETACH)`` + ``unlink`` (``ip netns delete``).
* **Links, addresses, routes** with :class:`Rtnl`, a minimal rtnetlink client (a few struct packs per
  request; pyroute2's ``IPRoute`` cost milliseconds of Python per pod: a new event loop and address
  pool per socket, a generic encoder per message).

Network namespaces are a property of a *thread*, and a netlink socket talks to the namespace its
creating thread was in. The agent may itself run in a namespace (tests and benchmarks ``setns`` the
event-loop thread into a simulated host), and threads of a pool may sit in a namespace some earlier
caller left behind. So every operation runs in a **fresh thread** started from the event-loop
thread (:func:`run_in_fresh_thread`): it inherits the loop thread's current namespace, opens its host
socket there, may then switch itself into a pod namespace, and exits when done, so no pooled thread
is ever left in a stale or foreign namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

T = TypeVar("T")


def _oserror(what: str, path: str | os.PathLike[str] | None = None) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}", None if path is None else str(path))


def mount(source: str, target: str | os.PathLike[str], fstype: str, flags: int = 0, data: str = "") -> None:
    """The mount(2) system call; raises OSError."""
    if (
        _libc.mount(
            source.encode(), os.fsencode(target), fstype.encode(), flags, data.encode() if data else None
        )
        != 0
    ):
        raise _oserror(f"mount {fstype}", target)


def umount(target: str | os.PathLike[str], detach: bool = False) -> None:
    """umount2(2) (``MNT_DETACH`` with ``detach``); raises OSError."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH if detach else 0) != 0:
        raise _oserror("umount", target)


def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise _oserror("setns")


async def run_in_fresh_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that starts in the calling thread's network namespace."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def deliver(ok: bool, value: object) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            fut.set_exception(value)

    def body() -> None:
        ok: bool
        value: object
        try:
            r = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            ok, value = False, e
        else:
            ok, value = True, r
        with contextlib.suppress(RuntimeError):  # the loop may have closed meanwhile
            loop.call_soon_threadsafe(deliver, ok, value)

    threading.Thread(target=body, name="netns-op", daemon=True).start()
    return await fut


_rundir_shared: set[str] = set()
_rundir_lock = threading.Lock()


def _share_rundir(rundir: Path) -> None:
    """Make ``rundir`` a shared mount point (what iproute2 does before its first ``netns add``)."""
    with _rundir_lock:
        if str(rundir) in _rundir_shared:
            return
        rundir.mkdir(parents=True, exist_ok=True)
        try:
            mount("", rundir, "none", MS_SHARED | MS_REC)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            mount(str(rundir), rundir, "none", MS_BIND | MS_REC)
            mount("", rundir, "none", MS_SHARED | MS_REC)
        _rundir_shared.add(str(rundir))


def create_netns_here(path: Path) -> None:
    """Create the named netns at ``path`` and move the *calling thread* into it.

    Must run in a thread of its own (see :func:`run_in_fresh_thread`), which ends up inside the new
    namespace. Raises FileExistsError when ``path`` already exists.
    """
    _share_rundir(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise _oserror("unshare(CLONE_NEWNET)")
        mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, "none", MS_BIND)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise


def enter_netns_here(path: Path) -> None:
    """Move the calling thread into the named netns at ``path`` (must be a thread of its own)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        setns_net(fd)
    finally:
        os.close(fd)


def delete_netns(path: Path) -> None:
    """``ip netns delete``: detach the bind mount and remove the file. Missing is fine."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount netns: {os.strerror(err)}", str(path))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------- rtnetlink

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE = 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")


def _attr(typ: int, data: bytes) -> bytes:
    n = _RTATTR.size + len(data)
    return _RTATTR.pack(n, typ) + data + b"\0" * ((4 - n % 4) % 4)


def _name(s: str) -> bytes:
    return s.encode() + b"\0"


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


class RtnlError(OSError):
    """A netlink request the kernel refused (``errno`` is the kernel's error)."""


class Rtnl:
    """A tiny synchronous rtnetlink client: just what a bridge CNI needs, nothing decoded that isn't used.

    The socket belongs to the network namespace of the thread that created it (see the module
    docstring); one instance must not be used by two threads at once.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, typ: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        """Send one request with ``NLM_F_ACK``; return the (type, payload) replies before the ack."""
        self.seq += 1
        seq = self.seq
        msg = (
            _NLMSGHDR.pack(_NLMSGHDR.size + len(body), typ, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body
        )
        self.sock.send(msg)
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                ln, mtyp, _fl, mseq, _pid = _NLMSGHDR.unpack_from(data, off)
                if ln < _NLMSGHDR.size:
                    raise RtnlError(errno.EIO, f"{what}: malformed netlink reply")
                payload = data[off + _NLMSGHDR.size : off + ln]
                off += (ln + 3) & ~3
                if mseq != seq:
                    continue
                if mtyp == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", payload)
                    if err:
                        raise RtnlError(-err, f"{what}: {os.strerror(-err)}")
                    return out
                out.append((mtyp, payload))

    # -- links

    def link_index(self, name: str) -> int | None:
        """ifindex of ``name``, or None when there is no such link."""
        try:
            replies = self.request(RTM_GETLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(name)), f"get {name}")
        except RtnlError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        for typ, payload in replies:
            if typ == RTM_NEWLINK:
                return int(_IFINFOMSG.unpack_from(payload)[2])
        return None

    def add_bridge(self, name: str) -> None:
        info = _attr(IFLA_INFO_KIND, b"bridge")
        body = _ifinfo() + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add bridge {name}")

    def add_veth(
        self, name: str, peer: str, peer_netns_fd: int, master: int | None = None, mtu: int | None = None
    ) -> None:
        """``ip link add NAME [master M] [mtu N] up type veth peer name PEER [mtu N] netns FD`` in one request."""
        mtu_attr = _attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""
        peer_msg = (
            _ifinfo()
            + _attr(IFLA_IFNAME, _name(peer))
            + mtu_attr
            + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        )
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_msg))
        body = _ifinfo(flags=IFF_UP, change=IFF_UP) + _attr(IFLA_IFNAME, _name(name)) + mtu_attr
        if master is not None:
            body += _attr(IFLA_MASTER, struct.pack("=I", master))
        body += _attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"add veth {name}")

    def set_link(
        self,
        index: int,
        up: bool | None = None,
        master: int | None = None,
        mac: str | None = None,
        mtu: int | None = None,
    ) -> None:
        """``ip link set INDEX [up|down] [master M] [address MAC] [mtu N]``."""
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
        body = _ifinfo(index, flags, change)
        if master is not None:
            body += _attr(IFLA_MASTER, struct.pack("=I", master))
        if mac is not None:
            body += _attr(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
        if mtu is not None:
            body += _attr(IFLA_MTU, struct.pack("=I", mtu))
        self.request(RTM_NEWLINK, 0, body, f"set link {index}")

    def del_link(self, name: str) -> bool:
        """Delete link ``name``; False when it did not exist."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _attr(IFLA_IFNAME, _name(name)), f"delete {name}")
        except RtnlError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # -- addresses and routes (IPv4)

    def add_addr(self, index: int, address: str, prefixlen: int) -> bool:
        """``ip addr add ADDRESS/PREFIXLEN dev INDEX``; False when it was already there."""
        a = socket.inet_aton(address)
        body = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += _attr(IFA_LOCAL, a) + _attr(IFA_ADDRESS, a)
        try:
            self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}")
        except RtnlError as e:
            if e.errno == errno.EEXIST:
                return False
            raise
        return True

    def replace_default_route(self, gateway: str, oif: int) -> None:
        """``ip route replace default via GATEWAY dev OIF``."""
        body = _RTMSG.pack(
            socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
        )
        body += _attr(RTA_GATEWAY, socket.inet_aton(gateway)) + _attr(RTA_OIF, struct.pack("=I", oif))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body, f"default route via {gateway}")
