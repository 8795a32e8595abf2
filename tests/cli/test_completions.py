"""The committed completion scripts match the CLI, and bash and fish really complete with them.

Static words (commands, flags, ``-o`` values, kinds, ``serve`` roles) need nothing; the names
that come from the cluster (namespaces, objects, tenants) are checked against a real API
server process, and contexts against its kubeconfig: bash runs the function with
``COMP_WORDS``/``COMP_CWORD`` set, fish answers ``complete -C``. Both call the installed
``centaurusctl`` (the virtualenv's ``bin`` is put first on ``PATH``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.cli.completion_cmd import GENERATORS, REPO_COMPLETIONS, generate
from ctl.cli.main import app
from tests.cli.kubeconfigs import two_contexts
from tests.cluster import ApiServerProcess


@pytest.mark.parametrize("shell", sorted(GENERATORS))
def test_committed_scripts_are_current(shell: str) -> None:
    path = REPO_COMPLETIONS / GENERATORS[shell][1]
    assert path.exists(), f"{path} missing: run 'centaurusctl completion --write'"
    assert path.read_text() == generate(shell, app), f"{path} is stale: run 'centaurusctl completion --write'"


def _env(kubeconfig: Path | None) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(kubeconfig or "/nonexistent/kubeconfig"),
    }


def _complete(words: list[str], kubeconfig: Path | None = None) -> list[str]:
    script = REPO_COMPLETIONS / "centaurusctl.bash"
    arr = " ".join(f"'{w}'" for w in words)
    cmd = f'source {script}; COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _centaurusctl; echo "${{COMPREPLY[@]}}"'
    out = subprocess.run(
        ["bash", "-c", cmd], capture_output=True, text=True, check=True, timeout=30, env=_env(kubeconfig)
    )
    return out.stdout.split()


def _fish(line: str, kubeconfig: Path | None = None) -> list[str]:
    script = REPO_COMPLETIONS / "centaurusctl.fish"
    cmd = f"source {script}; complete -C {line!r}"
    out = subprocess.run(
        ["fish", "-c", cmd], capture_output=True, text=True, check=True, timeout=30, env=_env(kubeconfig)
    )
    return [ln.split("\t", 1)[0] for ln in out.stdout.splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_commands_kinds_and_options() -> None:
    assert _complete(["centaurusctl", "app"]) == ["apply"]
    assert set(_complete(["centaurusctl", "get", "deplo"])) == {"deploy", "deployment", "deployments"}
    assert "use-context" in _complete(["centaurusctl", "config", "use"])
    assert "--output" in _complete(["centaurusctl", "get", "--out"])
    assert _complete(["centaurusctl", "nosuchcommand", "x"]) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_values_roles_and_global_flags() -> None:
    assert {"jsonpath=", "custom-columns=", "yaml", "wide"} <= set(
        _complete(["centaurusctl", "get", "-o", ""])
    )
    assert _complete(["centaurusctl", "get", "-o", "js"]) == ["json", "jsonpath="]
    assert {"apiserver", "scheduler", "controllers", "agent"} <= set(_complete(["centaurusctl", "serve", ""]))
    # a global flag and its value before the command do not end the command path
    assert set(_complete(["centaurusctl", "-n", "demo", "get", "deplo"])) == {
        "deploy",
        "deployment",
        "deployments",
    }
    assert "--sort-by" in _complete(["centaurusctl", "--context", "x", "get", "--so"])
    assert _complete(["centaurusctl", "get", "pods", "-o", "ya"]) == ["yaml"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real API server with namespace demo holding pods web-1, web-2, a tenant, and a kubeconfig of two contexts."""
    d: Path = tmp_path_factory.mktemp("compl")
    server = ApiServerProcess(d / "api").start()
    kc = d / "kubeconfig"
    two_contexts(kc, server.url)
    try:
        with server.sync_client() as c:
            c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
            c.create({"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": "compl-t"}, "spec": {}})
            for n in ("web-1", "web-2"):
                c.create(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": n, "namespace": "demo"},
                        "spec": {"containers": [{"name": "c", "image": "busybox:latest"}]},
                    }
                )
        yield kc
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash not installed")
def test_bash_completes_names_from_the_server(api: Path) -> None:
    kc = api
    pods = {"web-1", "web-2"}
    assert set(_complete(["centaurusctl", "-n", "demo", "get", "pods", ""], kc)) == pods
    assert set(_complete(["centaurusctl", "get", "pods", "-n", "demo", "web-"], kc)) == pods
    assert set(_complete(["centaurusctl", "--context", "demo-ctx", "describe", "po", ""], kc)) == pods
    assert not pods & set(_complete(["centaurusctl", "get", "pods", ""], kc))  # namespace default
    assert set(_complete(["centaurusctl", "-n", "demo", "get", "pod/"], kc)) == {"pod/web-1", "pod/web-2"}
    assert set(_complete(["centaurusctl", "logs", "-n", "demo", ""], kc)) == pods
    assert {"demo", "default"} <= set(_complete(["centaurusctl", "get", "pods", "-n", ""], kc))
    assert _complete(
        [
            "centaurusctl",
            "--namespace",
            "de",
        ],
        kc,
    ) == ["default", "demo"]
    assert "compl-t" in _complete(["centaurusctl", "get", "pods", "--tenant", ""], kc)
    assert set(_complete(["centaurusctl", "--context", ""], kc)) == {"c", "demo-ctx"}
    assert set(_complete(["centaurusctl", "config", "use-context", ""], kc)) == {"c", "demo-ctx"}
    # unreachable cluster: static words still complete, names are quietly empty
    assert _complete(["centaurusctl", "-n", "demo", "get", "pods", ""]) == []
    assert _complete(["centaurusctl", "get", "nod"]) == ["node", "nodes"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("fish") is None, reason="fish not installed (setup.sh installs it)")
def test_fish_completes_commands_flags_and_names(api: Path) -> None:
    kc = api
    assert "apply" in _fish("centaurusctl app")
    assert set(_fish("centaurusctl get deplo")) == {"deploy", "deployment", "deployments"}
    assert "use-context" in _fish("centaurusctl config use")
    assert "--sort-by" in _fish("centaurusctl get --so")
    assert {"json", "jsonpath="} == set(_fish("centaurusctl get pods -o js"))
    assert "apiserver" in _fish("centaurusctl serve ")
    pods = {"web-1", "web-2"}
    assert set(_fish("centaurusctl -n demo get pods ", kc)) == pods
    assert set(_fish("centaurusctl get pods --namespace demo web", kc)) == pods
    assert not pods & set(_fish("centaurusctl get pods ", kc))
    assert {"demo", "default"} <= set(_fish("centaurusctl get pods -n ", kc))
    assert "compl-t" in _fish("centaurusctl get pods --tenant ", kc)
    assert {"c", "demo-ctx"} == set(_fish("centaurusctl --context ", kc))
    assert {"c", "demo-ctx"} == set(_fish("centaurusctl config use-context ", kc))
    assert set(_fish("centaurusctl logs -n demo ", kc)) == pods
