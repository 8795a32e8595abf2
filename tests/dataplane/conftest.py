"""Fixtures for the data plane tests: skip cleanly where root/bcc/bpffs are missing.

``progs`` compiles the real programs once per session (bcc takes about 2 s; the per-program
test files share them) with maps pinned under a throw-away host name and removes the pins
afterwards; ``maps`` hands each test an emptied set of maps with the unit-test host configured
(substrate ifindex = loopback, which BPF_PROG_TEST_RUN accepts).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator

import pytest

UT_HOST_IP = "192.168.10.1"
UT_HOST_MAC = "02:00:00:00:0a:01"


def need_dataplane() -> None:
    if os.geteuid() != 0:
        pytest.skip("data plane tests need root (BPF programs, namespaces)")
    if importlib.util.find_spec("bcc") is None:
        pytest.skip("bcc (python3-bpfcc) is not installed")
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("bpffs is not mounted on /sys/fs/bpf")
    if not os.path.exists(f"/lib/modules/{os.uname().release}/build/include"):
        pytest.skip("no kernel headers for bcc at /lib/modules/$(uname -r)/build")


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")


@pytest.fixture(scope="session")
def progs() -> Iterator[object]:
    need_dataplane()
    from agent.transit.loader import compile_programs, remove_pins

    host = f"ut-{os.getpid()}"
    p = compile_programs(host)
    try:
        yield p
    finally:
        remove_pins(host)


@pytest.fixture
def maps(progs: object) -> Iterator[object]:
    from agent.transit.maps import TransitMaps

    m = TransitMaps(progs)  # type: ignore[arg-type]
    m.clear_all()
    m.set_config(UT_HOST_IP, UT_HOST_MAC, 1, 30.0)
    yield m
    m.clear_all()
