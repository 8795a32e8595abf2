"""Where benchmark results go: one JSON file per run under ``benchmarks/results/``.

:func:`write_results` writes ``{"benchmark", "time", "host", "args", "rows"}`` (the layout the other
benchmarks write by hand) to ``benchmarks/results/<name>-<timestamp>.json`` and returns the path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, args: argparse.Namespace, rows: list[dict[str, Any]]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    doc = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "args": {
            k: v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
            for k, v in vars(args).items()
        },
        "rows": rows,
    }
    out.write_text(json.dumps(doc, indent=2))
    return out
