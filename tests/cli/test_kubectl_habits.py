"""What a kubectl user types first, against a real API server: global flags before the command,
``get -o jsonpath|custom-columns|go-template``, ``--sort-by``, ``--no-headers``, and help that
shows examples and no ``<bool>`` for flags.

The API server runs as its own process (anonymous, insecure HTTP on loopback); every command is
a real ``python -m ctl`` process with a kubeconfig of two contexts (``c`` on namespace default,
``demo-ctx`` on namespace ``demo``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.kubeconfigs import two_contexts
from tests.cluster import ROOT, ApiServerProcess

pytestmark = pytest.mark.slow


def _cm(name: str, order: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "demo", "labels": {"app": "habits"}},
        "data": {"order": order},
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServerProcess, Path]]:
    d: Path = tmp_path_factory.mktemp("habits")
    server = ApiServerProcess(d / "api").start()
    kc = d / "kubeconfig"
    two_contexts(kc, server.url)
    try:
        with server.sync_client() as c:
            c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
            c.create(_cm("a-cm", "2"))
            c.create(_cm("b-cm", "1"))
        yield server, kc
    finally:
        server.stop()


def ctl(kc: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kc) if kc else "/nonexistent/kubeconfig"}
    return subprocess.run(
        [sys.executable, "-m", "ctl", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def ok(kc: Path | None, *args: str) -> str:
    r = ctl(kc, *args)
    assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stderr}"
    return r.stdout


def fails(kc: Path | None, *args: str, expect: str) -> None:
    r = ctl(kc, *args)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and expect in lines[0], (args, r.returncode, r.stderr)


def test_global_flags_before_the_command(api: tuple[ApiServerProcess, Path]) -> None:
    _, kc = api
    names = {"configmap/a-cm", "configmap/b-cm"}
    assert not names & set(ok(kc, "get", "configmaps", "-o", "name").split())
    assert set(ok(kc, "-n", "demo", "get", "configmaps", "-o", "name").split()) == names
    assert set(ok(kc, "--namespace", "demo", "get", "cm", "-o", "name").split()) == names
    assert set(ok(kc, "--context", "demo-ctx", "get", "cm", "-o", "name").split()) == names
    # the flag after the command wins over the one before it, as in kubectl
    assert not names & set(ok(kc, "-n", "demo", "get", "cm", "-n", "default", "-o", "name").split())
    # --kubeconfig before the command beats $KUBECONFIG (which points nowhere here)
    assert set(ok(None, "--kubeconfig", str(kc), "-n", "demo", "get", "cm", "-o", "name").split()) == names
    fails(None, "-n", "demo", "get", "cm", expect="no client config")
    fails(kc, "--context", "nope", "get", "cm", expect="nope")
    assert "a-cm" in ok(kc, "-n", "demo", "describe", "cm", "a-cm")


def test_get_templates_sort_and_no_headers(api: tuple[ApiServerProcess, Path]) -> None:
    _, kc = api
    get = ("-n", "demo", "get", "cm", "-l", "app=habits")
    assert ok(kc, *get, "-o", "jsonpath={.items[*].metadata.name}") == "a-cm b-cm"
    assert ok(kc, *get, "--sort-by=.data.order", "-o", "jsonpath={.items[*].metadata.name}") == "b-cm a-cm"
    assert (
        ok(kc, *get, "-o", 'jsonpath={range .items[*]}{.metadata.name}={.data.order}{"\\n"}{end}')
        == "a-cm=2\nb-cm=1\n"
    )
    assert ok(kc, "-n", "demo", "get", "cm/a-cm", "-o", "jsonpath={.data.order}") == "2"
    assert (
        ok(kc, "-n", "demo", "get", "cm", "a-cm", "-o", "jsonpath={.metadata.labels}") == '{"app":"habits"}'
    )
    out = ok(kc, *get, "-o", "custom-columns=NAME:.metadata.name,ORDER:.data.order,MISSING:.spec.x")
    assert out.splitlines() == ["NAME   ORDER   MISSING", "a-cm   2       <none>", "b-cm   1       <none>"]
    out = ok(kc, *get, "--sort-by", "{.data.order}", "--no-headers", "-o", "custom-columns=N:.metadata.name")
    assert out.splitlines() == ["b-cm", "a-cm"]
    table = ok(kc, *get, "--no-headers").splitlines()
    assert [ln.split()[0] for ln in table] == ["a-cm", "b-cm"]
    assert ok(kc, *get).splitlines()[0].startswith("NAME")
    assert ok(kc, *get, "-o", "go-template={{range .items}}{{.metadata.name}} {{end}}") == "a-cm b-cm "
    assert (
        ok(kc, "-n", "demo", "get", "cm/b-cm", "-o", "go-template={{.metadata.name}}:{{.data.order}}")
        == "b-cm:1"
    )
    assert ok(kc, "-n", "demo", "get", "cm/b-cm", "-o", "go-template={{.nope}}") == "<no value>"
    fails(kc, *get, "-o", "jsonpath=", expect="no template given")
    fails(kc, *get, "-o", "custom-columns=NAME", expect="custom-columns")
    fails(kc, *get, "-o", "go-template={{len .items}}", expect="unsupported go-template action")
    fails(kc, *get, "-o", "jsonpath={.items[x]}", expect="unsupported JSONPath subscript")
    fails(kc, *get, "-o", "xml", expect="jsonpath=...")


def test_help_has_examples_and_no_bool_metavars() -> None:
    for args in (["--help"], ["get", "--help"], ["logs", "--help"]):
        out = ok(None, *args)
        assert "Examples" in out and "<bool>" not in out, (args, out)
