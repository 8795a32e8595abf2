"""What the agent's stats read from a cgroup tree: v1, v2 and the hybrid layout, on real files.

:func:`agent.node.stats.cgroup_usage` is pointed at a temporary directory laid out as the
kernel lays out ``/sys/fs/cgroup`` in each mode, with the counters a container would have; the
VM figures are read from libvirt's in-memory test driver.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.node.stats import cgroup_name, cgroup_usage, host_usage, libvirt_usage

REL = "centaurus/node-1/abc-c-0"


def _write(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_cgroup_v1_cpuacct_and_working_set(tmp_path: Path) -> None:
    _write(tmp_path / "cpuacct" / REL / "cpuacct.usage", "123456789\n")
    _write(tmp_path / "memory" / REL / "memory.usage_in_bytes", "10485760\n")
    _write(tmp_path / "memory" / REL / "memory.stat", "cache 1\ntotal_inactive_file 2097152\nrss 5\n")
    assert cgroup_usage(REL, tmp_path) == (123456789, 10485760 - 2097152)


def test_cgroup_v2_unified(tmp_path: Path) -> None:
    _write(tmp_path / REL / "cpu.stat", "usage_usec 4200\nuser_usec 4000\nsystem_usec 200\n")
    _write(tmp_path / REL / "memory.current", "8388608\n")
    _write(tmp_path / REL / "memory.stat", "anon 1\ninactive_file 1048576\n")
    assert cgroup_usage(REL, tmp_path) == (4_200_000, 8388608 - 1048576)


def test_hybrid_reads_what_exists(tmp_path: Path) -> None:
    # memory only in v1, cpu only in the unified (v2) hierarchy mounted at unified/
    _write(tmp_path / "memory" / REL / "memory.usage_in_bytes", "4096\n")
    _write(tmp_path / "unified" / REL / "cpu.stat", "usage_usec 7\n")
    assert cgroup_usage(REL, tmp_path) == (7000, 4096)
    assert cgroup_usage("centaurus/node-1/missing", tmp_path) == (None, None)


def test_names_and_host_figures() -> None:
    assert cgroup_name("node 1/x") == "node_1_x" and cgroup_name("nœud") == "n_ud"
    cpu, mem = host_usage()
    assert cpu is not None and cpu > 0 and mem is not None and mem > 0


def test_libvirt_domain_figures() -> None:
    libvirt = pytest.importorskip("libvirt")
    conn = libvirt.openReadOnly("test:///default")  # libvirt's own in-memory test driver
    try:
        dom_uuid = conn.listAllDomains()[0].UUIDString()
    finally:
        conn.close()
    cpu, mem = libvirt_usage("test:///default", dom_uuid)
    assert cpu is not None and cpu > 0
    assert mem is not None and mem > 0 and mem % 1024 == 0  # libvirt reports KiB
    assert libvirt_usage("test:///default", "00000000-0000-0000-0000-000000000000") == (None, None)
