"""Prometheus text metrics of the API server: request counts and latency histograms.

Kept dependency-free: counters and fixed-bucket histograms in dicts, rendered in the
Prometheus exposition format at ``/metrics``. Other parts of the server add their own
lines through ``collectors`` (callables returning exposition lines), as flow control
(:mod:`ctl.apiserver.fairness`) and the connection limits (:mod:`ctl.apiserver.connections`) do.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.watchers: float = 0
        self.hist: dict[tuple[str, str], list[float]] = {}
        self.hist_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.collectors: list[Callable[[], list[str]]] = []

    def observe(self, verb: str, resource: str, code: int, seconds: float) -> None:
        self.requests[(verb, resource, code)] += 1
        key = (verb, resource)
        h = self.hist.get(key)
        if h is None:
            h = self.hist[key] = [0.0] * (len(BUCKETS) + 1)
        h[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.hist_sum[key] += seconds

    def render(self, extra: dict[str, float] | None = None) -> str:
        out = [
            "# HELP apiserver_request_total Counter of API requests by verb, resource and HTTP code.",
            "# TYPE apiserver_request_total counter",
        ]
        for (verb, res, code), n in sorted(self.requests.items()):
            out.append(f'apiserver_request_total{{verb="{verb}",resource="{res}",code="{code}"}} {n}')
        out += [
            "# HELP apiserver_request_duration_seconds Request latency by verb and resource.",
            "# TYPE apiserver_request_duration_seconds histogram",
        ]
        for (verb, res), h in sorted(self.hist.items()):
            cum: float = 0.0
            for b, cnt in zip(BUCKETS, h, strict=False):
                cum += cnt
                out.append(
                    f'apiserver_request_duration_seconds_bucket{{verb="{verb}",resource="{res}",le="{b}"}} {cum:g}'
                )
            cum += h[-1]
            out.append(
                f'apiserver_request_duration_seconds_bucket{{verb="{verb}",resource="{res}",le="+Inf"}} {cum:g}'
            )
            out.append(
                f'apiserver_request_duration_seconds_sum{{verb="{verb}",resource="{res}"}} {self.hist_sum[(verb, res)]:.6f}'
            )
            out.append(f'apiserver_request_duration_seconds_count{{verb="{verb}",resource="{res}"}} {cum:g}')
        out += [
            "# TYPE apiserver_registered_watchers gauge",
            f"apiserver_registered_watchers {self.watchers}",
        ]
        for k, v in (extra or {}).items():
            out += [f"# TYPE {k} gauge", f"{k} {v:g}"]
        for collect in self.collectors:
            out += collect()
        return "\n".join(out) + "\n"
