"""Which tests are the fast loop: markers given from the fixtures a test uses, and checked.

Every test ends up with exactly one of two kinds of marks:

* ``unit`` -- a pure in-process test: no child processes, no root, no network namespaces, no BPF,
  no libvirt. ``pytest -m unit`` (the same set as ``-m "not slow"``) runs them in a few seconds.
* ``slow`` plus what makes it slow -- ``root`` (namespaces, mounts, runc), ``bpf`` (loads programs
  through bcc), ``vm`` (libvirt, QEMU or the VM image), ``e2e`` (a whole cluster through ``init``).
  Each of the four implies ``slow``; ``slow`` alone means "starts processes" (an API server, a role,
  etcd, the CLI).

Marks come from three places, so almost nothing is marked by hand:

1. the fixtures a test uses, transitively (:data:`FIXTURE_MARKS`): a test whose fixtures start an
   API server is ``slow`` however many fixtures lie in between;
2. marks written on a test or module (``pytestmark = pytest.mark.slow``) for the few tests that
   start processes themselves;
3. otherwise ``unit``.

The classification is enforced, not trusted: while a ``unit`` test sets up and runs, starting any
process raises :class:`tests.helpers.processes.ProcessForbidden` and the test fails with a message
that says to mark it, so a mis-marked test cannot make the fast loop slow or dishonest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.helpers.processes import forbid

MARKERS = {
    "unit": "pure in-process test, no processes/root/namespaces (given automatically; the fast loop: -m unit)",
    "slow": "starts processes (API server, roles, etcd, CLI) or needs root/BPF/VMs (implied by the others)",
    "root": "needs root: network namespaces, mounts, runc (implies slow)",
    "bpf": "loads BPF programs through bcc (implies slow)",
    "vm": "needs libvirt, QEMU or the VM image (implies slow)",
    "e2e": "end-to-end through centaurusctl init with real components (implies slow)",
}
HEAVY = ("slow", "root", "bpf", "vm", "e2e")

# Fixtures that start processes or need privileges, by name, with what they imply. A test gets the
# marks of every fixture in its closure (fixtures of fixtures included).
FIXTURE_MARKS: dict[str, tuple[str, ...]] = {
    # API servers and roles as processes
    "apiserver": ("slow",),  # tests/conftest.py
    "fresh_apiserver": ("slow",),  # tests/conftest.py
    "api": ("slow",),  # tests/api, tests/scheduler: one per backend
    "etcd_proc": ("slow",),  # tests/api, tests/store: a real etcd
    "init_cluster": ("slow",),  # tests/api: centaurusctl init --detach
    "cluster": ("slow",),  # tests/controllers, tests/agent, tests/cli: API server + roles
    "tenancy": ("slow",),  # tests/tenancy: API server + tenant controller
    "parts": ("slow",),  # tests/agent/test_partitions.py: three API servers + an agent
    "tls": ("slow",),  # tests/tenancy/test_tls_cli.py: a TLS API server
    # root: namespaces, runc
    "host_netns": ("root",),  # tests/runtime
    "env": ("root",),  # tests/agent/test_runc.py: a runc agent in a namespace
    # BPF programs
    "progs": ("bpf", "root"),  # tests/dataplane
    "tb": ("bpf", "root"),  # tests/dataplane: the multi-host testbed
    # VMs
    "vm_data_dir": ("vm",),  # tests/vm: builds the tiny VM image
    # whole clusters
    "cluster_factory": ("e2e", "root"),  # tests/e2e
}


def register(config: pytest.Config) -> None:
    """Register the markers (pyproject.toml lists them too, for ``--strict-markers`` without this plugin)."""
    known = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, text in MARKERS.items():
        if name not in known:
            config.addinivalue_line("markers", f"{name}: {text}")


def classify(item: pytest.Item) -> set[str]:
    """The marks ``item`` gets: its own heavy marks, its fixtures', ``slow`` if any; else ``unit``."""
    marks = {m.name for m in item.iter_markers() if m.name in HEAVY}
    for name in getattr(item, "fixturenames", ()):
        marks.update(FIXTURE_MARKS.get(name, ()))
    return marks | {"slow"} if marks else {"unit"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Add the marks before ``-m`` selects (tryfirst: before pytest's own deselection hook)."""
    for item in items:
        own = {m.name for m in item.iter_markers()}
        for name in sorted(classify(item) - own):
            item.add_marker(name)


@contextmanager
def _guarded(item: pytest.Item, phase: str) -> Iterator[None]:
    if item.get_closest_marker("unit") is None:
        yield
        return
    reason = (
        f"{item.nodeid} is marked 'unit' but starts a process in {phase}; mark it 'slow' "
        "(or root/bpf/vm/e2e), or give its fixture an entry in tests/helpers/markers.py FIXTURE_MARKS"
    )
    with forbid(reason) as refused:
        yield
    if refused:  # the ProcessForbidden was swallowed by the code under test
        pytest.fail(f"{reason}: {refused}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _guarded(item, "setup"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _guarded(item, "the test"):
        return (yield)
