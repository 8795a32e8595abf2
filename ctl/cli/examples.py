"""Examples for every command's ``--help``, in one place.

kubectl's help ends with Examples; so does ours. A command whose docstring already has an
``Examples:`` section keeps it (``get``, ``logs``, ``create`` ...); for the others the table
below supplies one, and :func:`add_examples` appends it to the Click command's help when
``main`` assembles the CLI. Keeping the table here (rather than in each ``*_cmd.py``) lets one
test check that every visible command has examples (``tests/cli/test_kubectl_habits.py``).
"""

from __future__ import annotations

from typing import Any

EXAMPLES: dict[str, list[str]] = {
    "api-resources": ["centaurusctl api-resources", "centaurusctl api-resources -o wide"],
    "config": ["centaurusctl config get-contexts", "centaurusctl config use-context admin"],
    "config current-context": ["centaurusctl config current-context"],
    "config get-contexts": ["centaurusctl config get-contexts"],
    "config set-namespace": ["centaurusctl config set-namespace demo"],
    "config use-context": ["centaurusctl config use-context acme"],
    "config view": ["centaurusctl config view", "centaurusctl config view --raw"],
    "cordon": ["centaurusctl cordon node-1"],
    "uncordon": ["centaurusctl uncordon node-1"],
    "create cronjob": [
        "centaurusctl create cronjob tick --image busybox:latest --schedule '*/5 * * * *' -- date"
    ],
    "create job": [
        "centaurusctl create job once --image busybox:latest -- echo hi",
        "centaurusctl create job manual --from=cronjob/tick",
    ],
    "create secret": ["centaurusctl create secret generic creds --from-literal password=s3cret"],
    "create tenant": ["centaurusctl create tenant acme", "centaurusctl --context acme get ns"],
    "create token": ["centaurusctl create token bob --context acme --role view -n shop"],
    "describe": [
        "centaurusctl describe pod hello-7d4f9-abcde -n demo",
        "centaurusctl describe deploy/hello -n demo",
        "centaurusctl describe nodes",
    ],
    "down": ["centaurusctl down", "centaurusctl down --data-dir /tmp/c2"],
    "exec": [
        "centaurusctl exec -n demo hello-7d4f9-abcde -- ls /",
        "centaurusctl exec -it -n demo hello-7d4f9-abcde -- sh",
    ],
    "image": ["centaurusctl image list", "centaurusctl image import ./app.tar --name app:1"],
    "image build-defaults": ["centaurusctl image build-defaults"],
    "image import": ["centaurusctl image import ./app.tar --name app:1"],
    "image list": ["centaurusctl image list", "centaurusctl image list -o json"],
    "image remove": ["centaurusctl image remove app:1"],
    "init": [
        "centaurusctl init --detach",
        "centaurusctl init --detach --store etcd",
        "centaurusctl init --demo",
    ],
    "network": ["centaurusctl network trace -n demo web-1 web-2"],
    "network trace": [
        "centaurusctl network trace -n demo web-1 web-2",
        "centaurusctl network trace a b -o json",
    ],
    "packet": ["centaurusctl packet decode capture.pcap"],
    "packet craft": ["centaurusctl packet craft --help"],
    "packet decode": ["centaurusctl packet decode capture.pcap", "centaurusctl packet decode eth0 -o json"],
    "packet trace": ["centaurusctl packet trace --help"],
    "rollout": ["centaurusctl rollout status deploy/hello -n demo", "centaurusctl rollout undo deploy/hello"],
    "rollout history": ["centaurusctl rollout history deploy/hello -n demo"],
    "rollout pause": ["centaurusctl rollout pause deploy/hello -n demo"],
    "rollout restart": ["centaurusctl rollout restart deploy/hello -n demo"],
    "rollout resume": ["centaurusctl rollout resume deploy/hello -n demo"],
    "rollout status": ["centaurusctl rollout status deploy/hello -n demo"],
    "rollout undo": ["centaurusctl rollout undo deploy/hello -n demo --to-revision 1"],
    "scale": [
        "centaurusctl scale deploy/hello --replicas 3 -n demo",
        "centaurusctl scale rs web --replicas 0",
    ],
    "serve": [
        "centaurusctl serve apiserver --help",
        "centaurusctl serve scheduler --server http://127.0.0.1:6443",
    ],
    "status": ["centaurusctl status", "centaurusctl status -o json"],
    "token": ["centaurusctl token list --context acme"],
    "token list": ["centaurusctl token list --context acme"],
    "token revoke": ["centaurusctl token revoke token-3fa2 --context acme"],
    "transit": ["centaurusctl transit status", "centaurusctl transit dump -o json"],
    "transit delete": ["centaurusctl transit delete --help"],
    "transit dump": ["centaurusctl transit dump", "centaurusctl transit dump -o json"],
    "transit get": ["centaurusctl transit get --help"],
    "transit learned": ["centaurusctl transit learned"],
    "transit load": ["centaurusctl transit load --help"],
    "transit stats": ["centaurusctl transit stats"],
    "transit status": ["centaurusctl transit status"],
    "transit unload": ["centaurusctl transit unload --help"],
    "transit update": ["centaurusctl transit update --help"],
    "version": ["centaurusctl version", "centaurusctl version -o json"],
    "vm": ["centaurusctl vm snapshot vm1 --snapshot-id s1", "centaurusctl vm snapshots vm1"],
}


def add_examples(cmd: Any, path: str = "") -> None:
    """Append :data:`EXAMPLES` to the help of every command under ``cmd`` that has none."""
    if path and "Examples:" not in (cmd.help or "") and path in EXAMPLES:
        lines = "\n".join(f"  {e}" for e in EXAMPLES[path])
        cmd.help = f"{(cmd.help or '').rstrip()}\n\nExamples:\n{lines}"
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        add_examples(sub, f"{path} {name}".strip())


def missing_examples(cmd: Any, path: str = "") -> list[str]:
    """The visible commands under ``cmd`` whose help has no Examples section."""
    out = [path] if path and "Examples:" not in (cmd.help or "") else []
    for name, sub in (getattr(cmd, "commands", None) or {}).items():
        if not getattr(sub, "hidden", False) and not name.startswith("__"):
            out += missing_examples(sub, f"{path} {name}".strip())
    return out
