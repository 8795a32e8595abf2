"""Fixtures for the server-side apply tests.

The API tests' ``http`` (raw HTTP: status codes and bodies exactly as a client sees them)
and ``ns`` (a fresh namespace per test), bound here to the module's real API server on the
embedded store (the suite's ``apiserver``). The kubectl and Python client tests use the
session's ``init``-started cluster (``init_cluster``).
"""

from __future__ import annotations

import pytest

from tests.api.conftest import http, init_cluster, ns  # noqa: F401 (fixtures)
from tests.cluster import ApiServerProcess


@pytest.fixture(scope="module")
def api(apiserver: ApiServerProcess) -> ApiServerProcess:
    return apiserver
