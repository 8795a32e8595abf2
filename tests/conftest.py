"""Shared fixtures: a real API server process per test module (or per test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import ApiServerProcess


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
