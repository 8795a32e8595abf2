"""Measuring helpers shared by the benchmarks (store_bench, api_bench).

:func:`measure` runs ``op(i)`` for ``i in range(n)`` from ``concurrency`` asyncio workers
pulling indexes from a shared counter, timing each call, and returns throughput and
latency percentiles. Failed calls are counted, not timed, and the first error is kept
so a benchmark never reports numbers for work that did not happen silently.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 for an empty list)."""
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[idx]


async def measure(op: Callable[[int], Awaitable[Any]], n: int, concurrency: int) -> dict[str, Any]:
    """Run ``op(0..n-1)`` with ``concurrency`` workers.

    Returns ``{"n", "concurrency", "ok", "errors", "first_error", "seconds", "ops_per_s",
    "p50", "p99", "max"}`` with latencies in milliseconds and ``ops_per_s`` counting
    successful calls only.
    """
    if n <= 0 or concurrency <= 0:
        raise ValueError("n and concurrency must be positive")
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    next_i = 0

    async def worker() -> None:
        nonlocal next_i, errors, first_error
        while next_i < n:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            try:
                await op(i)
            except Exception as e:  # counted, reported
                errors += 1
                first_error = first_error or f"{type(e).__name__}: {e}"
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    seconds = time.perf_counter() - start
    latencies.sort()
    return {
        "n": n,
        "concurrency": concurrency,
        "ok": len(latencies),
        "errors": errors,
        "first_error": first_error,
        "seconds": round(seconds, 4),
        "ops_per_s": round(len(latencies) / seconds, 1) if seconds > 0 else 0.0,
        "p50": round(percentile(latencies, 50) * 1000, 3),
        "p99": round(percentile(latencies, 99) * 1000, 3),
        "max": round((latencies[-1] if latencies else 0.0) * 1000, 3),
    }
