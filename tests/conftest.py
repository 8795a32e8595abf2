"""Shared fixtures and the suite's marker plugin.

The fixtures start a real API server process per test module (``apiserver``) or per test
(``fresh_apiserver``). The hooks imported from :mod:`tests.helpers.markers` give every test its
markers (``unit`` for pure in-process tests, ``slow``/``root``/``bpf``/``vm``/``e2e`` for the rest,
derived from the fixtures it uses) and fail a ``unit`` test that starts a process, so
``pytest -m unit`` is the fast loop and stays honest. :mod:`tests.helpers.cleanup` makes SIGTERM
tear down like Ctrl-C and, after the last finalizer, kills and reports any process a fixture leaked.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import ApiServerProcess
from tests.helpers.cleanup import interrupt_on_sigterm, reap_children
from tests.helpers.markers import (  # noqa: F401 - pytest hooks, found by name in this conftest
    pytest_collection_modifyitems,
    pytest_runtest_call,
    pytest_runtest_setup,
    register,
)


def pytest_configure(config: pytest.Config) -> None:
    register(config)
    interrupt_on_sigterm()
    atexit.register(reap_children)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """After every fixture's finalizer (trylast): kill and name the processes a fixture leaked."""
    leaked = reap_children()
    if leaked:
        sys.stderr.write(
            "\nprocesses left running by the tests (now killed):\n  " + "\n  ".join(leaked) + "\n"
        )


def is_root() -> bool:
    return os.geteuid() == 0


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """An anonymous-admin API server on the embedded store, shared by one test module."""
    d: Path = tmp_path_factory.mktemp("apiserver")
    srv = ApiServerProcess(d).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def fresh_apiserver(tmp_path: Path) -> Iterator[ApiServerProcess]:
    """A private API server for tests that restart or corrupt it."""
    srv = ApiServerProcess(tmp_path / "api").start()
    try:
        yield srv
    finally:
        srv.stop()
