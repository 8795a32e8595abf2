"""The shared test helpers themselves: eventually() waits and reports, spawned()/forbid() see processes.

These are unit tests in the sense the marker plugin enforces: none of them starts a process (the
``forbid`` test asks for one and proves it was refused before anything ran).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from tests.helpers import eventually, eventually_sync, spawned
from tests.helpers.markers import classify
from tests.helpers.processes import ProcessForbidden, forbid


async def test_eventually_returns_the_first_truthy_value() -> None:
    calls = 0

    async def third() -> int | None:
        nonlocal calls
        calls += 1
        return calls * 10 if calls >= 3 else None

    assert await eventually(third, timeout=5, interval=0.01) == 30
    assert calls == 3
    assert await eventually(lambda: "plain", timeout=1) == "plain"  # a sync fn is accepted too


async def test_eventually_times_out_with_what_and_last_value_and_diag() -> None:
    t0 = time.monotonic()
    with pytest.raises(AssertionError) as e:
        await eventually(
            lambda: [], timeout=0.05, interval=0.01, what="the list to fill", diag=lambda: "LOGTAIL"
        )
    took = time.monotonic() - t0
    msg = str(e.value)
    assert "timed out after 0.05s waiting for the list to fill; last value: []" in msg
    assert msg.endswith("\nLOGTAIL")
    assert took >= 0.05


async def test_eventually_ignores_only_the_given_exceptions() -> None:
    attempts = iter([KeyError("k"), KeyError("k"), "ok"])

    def flaky() -> str:
        v = next(attempts)
        if isinstance(v, Exception):
            raise v
        return v

    assert await eventually(flaky, timeout=5, interval=0.01, ignore=(KeyError,)) == "ok"
    with pytest.raises(ZeroDivisionError):
        await eventually(lambda: 1 / 0, timeout=5, ignore=(KeyError,))
    with pytest.raises(AssertionError, match="last value: KeyError: 'gone'"):
        await eventually(lambda: {}["gone"], timeout=0.03, interval=0.01, ignore=(KeyError,))


def test_eventually_sync_checks_once_more_at_the_deadline() -> None:
    start = time.monotonic()
    # true only after 0.04 s, with an interval longer than the timeout: found by the final attempt
    assert eventually_sync(lambda: time.monotonic() - start > 0.04, timeout=0.05, interval=10) is True
    with pytest.raises(AssertionError, match="waiting for never; last value: 0"):
        eventually_sync(lambda: 0, timeout=0.05, interval=0.01, what="never")


async def test_spawned_counts_nothing_for_in_process_work_and_forbid_refuses() -> None:
    with spawned() as started:
        await asyncio.sleep(0)
        os.getpid()
    assert started == []
    with forbid("no processes here") as refused:
        with pytest.raises(ProcessForbidden, match="no processes here: it started 'true'"):
            subprocess.run(["true"], check=False)
    assert refused == ["true"]


def test_unit_is_given_only_without_heavy_fixtures_or_marks(request: pytest.FixtureRequest) -> None:
    item = request.node
    assert classify(item) == {"unit"} and item.get_closest_marker("unit") is not None
    item.fixturenames.append("apiserver")  # as if it used the API server fixture
    try:
        assert classify(item) == {"slow"}
        item.fixturenames.append("cluster_factory")
        assert classify(item) == {"slow", "e2e", "root"}
    finally:
        del item.fixturenames[-2:]
