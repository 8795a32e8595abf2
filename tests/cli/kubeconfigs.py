"""A kubeconfig for CLI tests against one API server: context ``c`` (namespace default, current)
and ``demo-ctx`` (namespace ``demo``), anonymous user."""

from __future__ import annotations

from pathlib import Path

import yaml


def two_contexts(path: Path, server_url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server_url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "c", "user": "u"}},
                    {"name": "demo-ctx", "context": {"cluster": "c", "user": "u", "namespace": "demo"}},
                ],
                "current-context": "c",
            }
        )
    )
    return path
