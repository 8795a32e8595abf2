"""Compile, load, attach and test-run the XDP programs of bpf/ (bcc + pyroute2).

The four entry programs of ``bpf/`` (``PROGRAM_FILES``) are compiled together, in one bcc
module, so that they share the maps declared once in ``bpf/lib/maps.h``. bcc only rewrites map
method calls in the main translation unit, so the quoted ``#include "..."`` lines of the
project's own headers are expanded here (each header once) before the text goes to bcc;
system headers stay ordinary includes. Maps are ``BPF_TABLE_PINNED``: the first compile creates
and pins them under ``/sys/fs/bpf/centaurus/<host>/``; later compiles (a restarted daemon)
reuse the pinned maps, so state and forwarding survive a daemon restart.

Attachment is plain netlink (``IFLA_XDP``) through pyroute2. A netlink-attached XDP program
stays on the interface when the process that attached it exits; re-attaching a new program
replaces the old one atomically, which is how a restarted daemon takes over without a gap.

``test_run`` drives ``BPF_PROG_TEST_RUN`` (bpf syscall command 10) so that each program path
can be exercised on a crafted packet without any interface: an XDP program gets an ``xdp_md``
context (its ingress ifindex), a TC (SCHED_CLS) program an ``__sk_buff`` context (the GSO segment
count transit_decap_tc looks at).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
PIN_ROOT = Path("/sys/fs/bpf/centaurus")
PROGRAM_FILES = ("transit_xdp.c", "transit_agent.c", "transit_agent_tc.c", "transit_decap_tc.c")

XDP_FLAGS_UPDATE_IF_NOEXIST = 1 << 0
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2

XDP_VERDICTS = {0: "ABORTED", 1: "DROP", 2: "PASS", 3: "TX", 4: "REDIRECT"}

_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')


class LoaderError(Exception):
    """Compilation, loading or attachment failed (message is one line for the user)."""


def pin_dir(host: str) -> Path:
    """Where the maps of ``host`` are pinned."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", host) or host in (".", ".."):
        raise LoaderError(f"invalid host name {host!r}: use letters, digits, '.', '_' or '-'")
    return PIN_ROOT / host


def expand_source(path: Path, seen: set[Path] | None = None) -> str:
    """Return ``path`` with the project's quoted includes expanded in place (each file once)."""
    seen = set() if seen is None else seen
    out: list[str] = [f"/* --- {path.name} --- */\n"]
    for line in path.read_text().splitlines(keepends=True):
        m = _INCLUDE.match(line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if inc not in seen:
                seen.add(inc)
                out.append(expand_source(inc, seen))
            continue
        out.append(line)
    return "".join(out)


def program_source() -> str:
    """The single translation unit bcc compiles: every entry program and its headers."""
    seen: set[Path] = set()
    return "\n".join(expand_source(BPF_DIR / name, seen) for name in PROGRAM_FILES)


def counter_names(prefix: str) -> list[str]:
    """Counter names in enum order, parsed from bpf/lib/counters.h (``XDP_C_`` / ``AGENT_C_``)."""
    text = (BPF_DIR / "lib" / "counters.h").read_text()
    names = re.findall(rf"^\s*{prefix}([A-Z0-9_]+)\s*(?:=\s*0\s*)?,", text, re.M)
    return [n.lower() for n in names if n != "MAX"]


@dataclass
class Programs:
    """A compiled module: the bcc object (tables) and the fd of each entry program."""

    bpf: Any
    xdp_fd: int
    agent_fd: int
    agent_tc_fd: int
    decap_tc_fd: int

    def table(self, name: str) -> Any:
        return self.bpf[name.encode()]


def compile_programs(host: str) -> Programs:
    """Compile and load the entry programs with maps pinned for ``host`` (creating the pins if new)."""
    try:
        from bcc import BPF  # type: ignore[import-not-found]
    except ImportError as e:  # pragma: no cover - environment
        raise LoaderError("bcc (python3-bpfcc) is not installed") from e
    pdir = pin_dir(host)
    pdir.mkdir(parents=True, exist_ok=True)
    cflags = [f'-DCEN_PIN_DIR="{pdir}"', "-Wno-unused-function", "-Wno-compare-distinct-pointer-types"]
    try:
        b = BPF(text=program_source().encode(), cflags=cflags)
        xdp = b.load_func(b"transit_xdp", BPF.XDP)
        agent = b.load_func(b"transit_agent", BPF.XDP)
        agent_tc = b.load_func(b"transit_agent_tc", BPF.SCHED_CLS)
        decap_tc = b.load_func(b"transit_decap_tc", BPF.SCHED_CLS)
    except Exception as e:  # bcc raises bare Exception
        raise LoaderError(f"cannot compile/load bpf programs: {e}") from e
    return Programs(bpf=b, xdp_fd=xdp.fd, agent_fd=agent.fd, agent_tc_fd=agent_tc.fd, decap_tc_fd=decap_tc.fd)


def remove_pins(host: str) -> None:
    """Unpin every map of ``host`` (the maps die with their last user)."""
    shutil.rmtree(pin_dir(host), ignore_errors=True)


# ---- attachment (pyroute2) -------------------------------------------------------------------

MODES = ("auto", "native", "generic")


def _ipr() -> Any:
    from pyroute2 import IPRoute

    return IPRoute()


def ifindex_of(name: str) -> int:
    """ifindex of interface ``name`` in the current network namespace."""
    with _ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
    if not idx:
        raise LoaderError(f"no interface named {name!r} on this host")
    return int(idx[0])


def ifindex_of_checked(name: str) -> int:
    """Like ifindex_of, but a missing interface is a request error (model.Invalid)."""
    from agent.transit.model import Invalid

    try:
        return ifindex_of(name)
    except LoaderError as e:
        raise Invalid(str(e)) from e


def ifname_of(index: int) -> str | None:
    with _ipr() as ipr:
        try:
            links = ipr.get_links(index)
        except Exception:
            return None
    return links[0].get_attr("IFLA_IFNAME") if links else None


def ifnames() -> dict[int, str]:
    """ifindex -> name of every interface in the current network namespace."""
    with _ipr() as ipr:
        return {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def interface_info(name: str) -> dict[str, Any]:
    """ifindex, MAC and first IPv4 address of ``name``."""
    with _ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            raise LoaderError(f"no interface named {name!r} on this host")
        link = ipr.get_links(idx[0])[0]
        addrs = ipr.get_addr(index=idx[0], family=2)
    ip = addrs[0].get_attr("IFA_ADDRESS") if addrs else None
    return {
        "ifindex": idx[0],
        "mac": link.get_attr("IFLA_ADDRESS"),
        "ip": ip,
        "mtu": link.get_attr("IFLA_MTU"),
    }


def xdp_attached(index: int) -> dict[str, Any]:
    """Which XDP program (id) is attached to ``index`` and in which mode."""
    with _ipr() as ipr:
        links = ipr.get_links(index)
    if not links:
        return {"mode": None, "prog_id": 0}
    xdp = links[0].get_attr("IFLA_XDP")
    if xdp is None:
        return {"mode": None, "prog_id": 0}
    return {"mode": xdp.get_attr("IFLA_XDP_ATTACHED"), "prog_id": xdp.get_attr("IFLA_XDP_PROG_ID") or 0}


def _set_xdp(index: int, fd: int, flags: int) -> None:
    with _ipr() as ipr:
        ipr.link("set", index=index, xdp={"attrs": [("IFLA_XDP_FD", fd), ("IFLA_XDP_FLAGS", flags)]})


def attach(index: int, fd: int, mode: str = "auto") -> str:
    """Attach (or atomically replace) program ``fd`` on ``index``; returns the mode used.

    ``auto`` tries native (driver) mode and falls back to generic (skb) mode. A program already
    attached in the other mode is removed first (the kernel refuses two modes at once).
    """
    if mode not in MODES:
        raise LoaderError(f"unknown attach mode {mode!r} (one of {', '.join(MODES)})")
    current = xdp_attached(index)["mode"]
    tries = {"auto": ["native", "generic"], "native": ["native"], "generic": ["generic"]}[mode]
    last: Exception | None = None
    for m in tries:
        flags = XDP_FLAGS_DRV_MODE if m == "native" else XDP_FLAGS_SKB_MODE
        want = "xdp" if m == "native" else "xdpgeneric"
        try:
            if current and current != want:
                detach(index)
                current = None
            _set_xdp(index, fd, flags)
            return m
        except Exception as e:  # NetlinkError
            last = e
    raise LoaderError(f"cannot attach XDP to ifindex {index} in {mode} mode: {last}")


def detach(index: int) -> None:
    """Remove any XDP program from ``index`` (both modes); a vanished interface is fine."""
    for flags in (XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE):
        try:
            _set_xdp(index, -1, flags)
        except Exception as e:
            if getattr(e, "code", None) == errno.ENODEV:
                return


# ---- TC attachment (transit_agent_tc) ----------------------------------------------------------

TC_INGRESS = "ffff:fff2"


def attach_tc(index: int, fd: int, name: str = "transit_agent_tc") -> str:
    """Attach (or atomically replace) a cls_bpf program on the ingress of ``index``."""
    try:
        with _ipr() as ipr:
            try:
                ipr.tc("add", "clsact", index)
            except Exception as e:
                if getattr(e, "code", None) != errno.EEXIST:
                    raise
            ipr.tc(
                "replace-filter", "bpf", index, ":1", fd=fd, name=name,
                parent=TC_INGRESS, classid=1, direct_action=True, prio=1,
            )  # fmt: skip
    except Exception as e:
        raise LoaderError(f"cannot attach TC program to ifindex {index}: {e}") from e
    return "tc"


def detach_tc(index: int) -> None:
    """Remove the clsact qdisc (and with it our filter) from ``index``; absent is fine."""
    try:
        with _ipr() as ipr:
            ipr.tc("del", "clsact", index)
    except Exception:
        pass


def tc_attached(index: int) -> bool:
    try:
        with _ipr() as ipr:
            return any(f.get_attr("TCA_KIND") == "bpf" for f in ipr.get_filters(index, parent=TC_INGRESS))
    except Exception:
        return False


# ---- BPF_PROG_TEST_RUN -----------------------------------------------------------------------

_BPF_PROG_TEST_RUN = 10
_SYS_bpf = 321  # x86_64


class _TestRunAttr(ctypes.Structure):
    _fields_ = [
        ("prog_fd", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("data_in", ctypes.c_uint64),
        ("data_out", ctypes.c_uint64),
        ("repeat", ctypes.c_uint32),
        ("duration", ctypes.c_uint32),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_uint64),
        ("ctx_out", ctypes.c_uint64),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


class _XdpMd(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint32),
        ("data_end", ctypes.c_uint32),
        ("data_meta", ctypes.c_uint32),
        ("ingress_ifindex", ctypes.c_uint32),
        ("rx_queue_index", ctypes.c_uint32),
        ("egress_ifindex", ctypes.c_uint32),
    ]


class _SkBuff(ctypes.Structure):
    """``struct __sk_buff`` up to ``gso_segs`` (offset 164); the kernel zero-fills a shorter context
    and accepts only a few fields in it (mark, priority, ifindex, cb, tstamp, wire_len, gso_*)."""

    _fields_ = [
        ("_head", ctypes.c_uint32 * 10),  # len .. ingress_ifindex
        ("ifindex", ctypes.c_uint32),
        ("_mid", ctypes.c_uint32 * 25),  # tc_index .. data_meta
        ("_flow_keys", ctypes.c_uint64),
        ("tstamp", ctypes.c_uint64),
        ("wire_len", ctypes.c_uint32),
        ("gso_segs", ctypes.c_uint32),
    ]


@dataclass
class TestRunResult:
    retval: int
    data: bytes
    duration_ns: int

    @property
    def verdict(self) -> str:
        return XDP_VERDICTS.get(self.retval, str(self.retval))


def test_run(
    prog_fd: int, packet: bytes, ingress_ifindex: int = 0, repeat: int = 1, *, gso_segs: int = 0
) -> TestRunResult:
    """Run a program once (or ``repeat`` times) on ``packet`` via BPF_PROG_TEST_RUN.

    ``ingress_ifindex`` is an XDP program's ``ctx->ingress_ifindex``; ``gso_segs`` makes the
    packet a TC program's GSO skb of that many segments (without either, the kernel's default
    context: for TC, an skb on loopback).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    data_in = ctypes.create_string_buffer(packet, len(packet))
    out = ctypes.create_string_buffer(len(packet) + 512)
    attr = _TestRunAttr()
    attr.prog_fd = prog_fd
    attr.data_size_in = len(packet)
    attr.data_size_out = len(out)
    attr.data_in = ctypes.addressof(data_in)
    attr.data_out = ctypes.addressof(out)
    attr.repeat = repeat
    ctx: ctypes.Structure | None = None
    if ingress_ifindex:
        ctx = _XdpMd(0, len(packet), 0, ingress_ifindex, 0, 0)
    elif gso_segs:
        ctx = _SkBuff(gso_segs=gso_segs)
    if ctx is not None:
        attr.ctx_in = ctypes.addressof(ctx)
        attr.ctx_size_in = ctypes.sizeof(ctx)
    rc = libc.syscall(_SYS_bpf, _BPF_PROG_TEST_RUN, ctypes.byref(attr), ctypes.sizeof(attr))
    if rc != 0:
        err = ctypes.get_errno()
        raise LoaderError(f"BPF_PROG_TEST_RUN failed: {os.strerror(err)}")
    return TestRunResult(retval=attr.retval, data=out.raw[: attr.data_size_out], duration_ns=attr.duration)
