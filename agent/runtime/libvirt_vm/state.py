"""What the VM runtime remembers about a pod besides the libvirt domain, and how domains are named.

A VM pod's ``DATA_DIR/vms/<uid>/state.json`` (:class:`PodState`) holds what libvirt does not keep:
the restart count and start time Kubernetes reports, whether the guest was ever started and whether
the runtime itself stopped it (so a guest that powered off on its own is told apart and handled by
``restartPolicy``), a graceful shutdown in flight, the last ``stop``/``start`` action that overrides
``powerSpec``, the automatic-restart back-off and the snapshots taken. Everything else is read back
from the domain, so a restarted agent needs only this file and libvirt.

The ``virDomainState`` values are named here once for the modules of this package.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ctl.types.vm_validation import DEFAULT_POWER_SPEC

# libvirt's virDomainState values
NOSTATE, RUNNING, BLOCKED, PAUSED, SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = range(8)


def domain_name(tenant: str, namespace: str, name: str, uid: str) -> str:
    """The libvirt domain name of a pod: recognisable, unique (uid prefix), at most 100 characters."""

    def clean(s: str, n: int) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]", "_", s)[:n]

    return f"cx-{clean(tenant or 'system', 20)}-{clean(namespace or 'default', 24)}-{clean(name, 40)}-{clean(uid, 8)}"


class PodState:
    """What ``state.json`` remembers about one VM pod across agent restarts."""

    FIELDS = {
        "uid": "",
        "name": "",
        "namespace": "",
        "tenant": "",
        "domain": "",
        "vmName": "",
        "image": "",
        "powerSpec": DEFAULT_POWER_SPEC,
        "restartCount": 0,
        "startedAt": None,
        "everStarted": False,
        "stoppedByUs": False,
        "shutdownRequestedAt": None,
        "override": None,  # {"power": "Shutdown"|"Running", "powerSpec": <pod powerSpec when set>}
        "lastAutoRestart": 0.0,
        "autoRestarts": 0,
        "snapshots": [],  # [{"id", "time", "kind": "save"|"internal", "file"}]
        "kind": "kernel",
        "error": "",
    }

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.d: dict[str, Any] = {k: (list(v) if isinstance(v, list) else v) for k, v in self.FIELDS.items()}
        if data:
            self.d.update(data)

    @classmethod
    def load(cls, path: Path) -> PodState | None:
        try:
            return cls(path, json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.d, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def __getitem__(self, k: str) -> Any:
        return self.d[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self.d[k] = v
