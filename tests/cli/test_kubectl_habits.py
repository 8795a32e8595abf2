"""What a kubectl user types first, against a real API server: global flags before the command,
``get -o jsonpath|custom-columns|go-template``, ``--sort-by``, ``--no-headers``, and help that
shows examples and no ``<bool>`` for flags.

The API server runs as its own process (anonymous, insecure HTTP on loopback); every command is
a real ``python -m ctl`` process with a kubeconfig of two contexts (``c`` on namespace default,
``demo-ctx`` on namespace ``demo``).
"""

from __future__ import annotations

import base64
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    for args in (
        ["--help"],
        ["get", "--help"],
        ["logs", "--help"],
        ["serve", "--help"],
        ["vm", "snapshots", "--help"],
    ):
        out = ok(None, *args)
        assert "Examples" in out and "<bool>" not in out, (args, out)


def _parse(root: Any, args: list[str]) -> None:
    """Parse ``args`` down the command tree as Click would before running the command (unknown flags fail)."""
    ctx = root.make_context("centaurusctl", list(args))
    cmd, rest = root, [*getattr(ctx, "_protected_args", []), *ctx.args]
    while hasattr(cmd, "commands") and rest:
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args] if hasattr(cmd, "commands") else []


def test_every_command_has_examples_that_parse() -> None:
    """Every visible command's help has an Examples section, and every example is a valid command line."""
    from ctl.cli.examples import missing_examples
    from ctl.cli.main import command

    root = command()
    assert missing_examples(root) == []
    checked = 0

    def walk(cmd: Any) -> None:
        nonlocal checked
        for sub in (getattr(cmd, "commands", None) or {}).values():
            for line in (sub.help or "").split("Examples:", 1)[-1].splitlines():
                if any(c in line for c in "|<>"):  # a shell pipeline or redirection around it
                    continue
                words = shlex.split(line.strip())
                if words[:1] == ["centaurusctl"] and "--help" not in words:
                    _parse(root, words[1:])
                    checked += 1
            walk(sub)

    walk(root)
    assert checked > 80
    with pytest.raises(Exception, match="No such option"):
        _parse(root, ["get", "pods", "--bogus"])


def test_label_and_annotate_many(api: tuple[ApiServerProcess, Path]) -> None:
    _, kc = api
    out = ok(kc, "-n", "demo", "label", "cm", "-l", "app=habits", "tier=web")
    assert out.splitlines() == ["configmap/a-cm labeled", "configmap/b-cm labeled"]
    assert ok(kc, "-n", "demo", "get", "cm", "-l", "tier=web", "-o", "name").split() == [
        "configmap/a-cm",
        "configmap/b-cm",
    ]
    assert "configmap/a-cm annotated" in ok(kc, "annotate", "cm", "--all", "-n", "demo", "seen=yes")
    got = ok(kc, "-n", "demo", "get", "cm", "-o", "jsonpath={.items[*].metadata.annotations.seen}")
    assert got == "yes yes"
    fails(kc, "-n", "demo", "label", "cm", "-l", "app=habits", "tier=db", expect="--overwrite is false")
    fails(kc, "-n", "demo", "label", "cm", "-l", "app=habits", "--all", "x=y", expect="only one of")
    fails(kc, "-n", "demo", "label", "cm", "-l", "app=habits", "a-cm", "x=y", expect="invalid label update")
    ok(kc, "-n", "demo", "label", "cm", "-l", "app=habits", "tier-")
    assert ok(kc, "-n", "demo", "get", "cm", "-l", "tier", "-o", "name") == ""


def test_create_from_files_and_generators(api: tuple[ApiServerProcess, Path], tmp_path: Path) -> None:
    _, kc = api
    f = tmp_path / "two.yaml"
    f.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f-one}\ndata: {k: v}\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: f-two, namespace: demo}\n"
    )
    assert ok(kc, "create", "-f", str(f), "-n", "demo").splitlines() == [
        "configmap/f-one created",
        "configmap/f-two created",
    ]
    r = ctl(kc, "create", "-f", str(f), "-n", "demo")  # create, unlike apply, refuses what exists
    assert r.returncode == 1 and r.stderr.count("AlreadyExists") == 2 and "Traceback" not in r.stderr, (
        r.stderr
    )
    assert ok(
        kc,
        "-n",
        "demo",
        "create",
        "deployment",
        "web",
        "--image",
        "busybox:latest",
        "-r",
        "3",
        "--",
        "sleep",
        "9",
    )
    dep = yaml.safe_load(ok(kc, "-n", "demo", "get", "deploy", "web", "-o", "yaml"))
    assert dep["spec"]["replicas"] == 3 and dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    (c0,) = dep["spec"]["template"]["spec"]["containers"]
    assert (c0["name"], c0["image"], c0["command"]) == ("busybox", "busybox:latest", ["sleep", "9"])
    src = tmp_path / "app.conf"
    src.write_text("mode: fast\n")
    out = ok(kc, "create", "configmap", "gen", "-n", "demo", "--from-literal", "a=1", "--from-file", str(src))
    assert out.strip() == "configmap/gen created"
    assert (
        ok(kc, "-n", "demo", "get", "cm", "gen", "-o", "jsonpath={.data}")
        == '{"a":"1","app.conf":"mode: fast\\n"}'
    )
    ok(
        kc,
        "create",
        "secret",
        "generic",
        "sec",
        "-n",
        "demo",
        "--from-literal",
        "pw=s3cret",
        "--from-file",
        f"k={src}",
    )

    data = yaml.safe_load(ok(kc, "-n", "demo", "get", "secret", "sec", "-o", "yaml"))["data"]
    assert base64.b64decode(data["pw"]) == b"s3cret" and base64.b64decode(data["k"]) == b"mode: fast\n"
    fails(kc, "create", "configmap", "bad", "--from-literal", "novalue", expect="expected KEY=VALUE")
    fails(kc, "create", "configmap", "bad", "--from-file", str(tmp_path / "nope"), expect="cannot read")
    fails(kc, "create", "deployment", "nodeploy", expect="--image")
    fails(kc, "create", "-f", str(f), "configmap", "x", expect="cannot be combined")


def test_delete_waits_by_default(api: tuple[ApiServerProcess, Path]) -> None:
    """No namespace controller runs here, so a deleted namespace stays Terminating: the wait shows."""
    server, kc = api
    with server.sync_client() as c:
        for n in ("wait-a", "wait-b"):
            c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}})
    r = ctl(kc, "delete", "namespace", "wait-a", "--timeout", "1")
    assert r.returncode == 1 and 'namespace "wait-a" deleted' in r.stdout, r
    assert "timed out waiting for the deletion of namespace/wait-a" in r.stderr
    assert 'namespace "wait-b" deleted' in ok(kc, "delete", "namespace", "wait-b", "--wait=false")
    assert 'namespace "wait-a" deleted' in ok(kc, "delete", "ns", "wait-a", "--no-wait", "--ignore-not-found")
    # an object that goes at once: the wait ends as soon as it is gone
    assert 'configmap "f-one" deleted' in ok(kc, "-n", "demo", "delete", "cm", "f-one")
    fails(kc, "-n", "demo", "get", "cm", "f-one", expect="NotFound")


def test_unknown_fields_warn_and_bad_yaml_says_where(
    api: tuple[ApiServerProcess, Path], tmp_path: Path
) -> None:
    _, kc = api
    f = tmp_path / "typo.yaml"
    f.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: typo, namespace: demo}\ndata: {a: b}\ndatta: {c: d}\n"
    )
    for verb in ("apply", "create"):
        if verb == "create":
            ok(kc, "-n", "demo", "delete", "cm", "typo")
        r = ctl(kc, verb, "-f", str(f))
        assert r.returncode == 0 and "configmap/typo" in r.stdout, r.stderr
        assert r.stderr.startswith("Warning: unknown field") and "datta" in r.stderr, (verb, r.stderr)
        got = yaml.safe_load(ok(kc, "-n", "demo", "get", "cm", "typo", "-o", "yaml"))
        assert "datta" not in got and got["data"] == {"a": "b"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n labels: {a: b}\n")
    fails(kc, "apply", "-f", str(bad), expect=f"{bad}: expected <block end>")
    r = ctl(kc, "apply", "-f", str(bad))
    assert "(line 5, column 2)" in r.stderr and "block mapping started at line 1" in r.stderr, r.stderr
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   oops: [\n")
    fails(kc, "create", "-f", str(bad), expect="mapping values are not allowed here (line 5, column 8)")
    js = tmp_path / "bad.json"
    js.write_text('{"apiVersion": "v1",\n "kind": }')
    fails(kc, "apply", "-f", str(js), expect="Expecting value (line 2, column 10)")


def test_serve_role_help_looks_like_the_rest() -> None:
    for role in ("scheduler", "apiserver", "controllers"):
        out = ok(None, "serve", role, "--help")
        assert out.lstrip().startswith(f"Usage: centaurusctl serve {role} [OPTIONS]"), out[:200]
        assert "╭─ Options" in out and "--help" in out and "usage:" not in out, out[:400]
    assert "╭─ Options" in ok(None, "serve", "scheduler", "-h")
    fails(None, "serve", "nosuch", expect="unknown role 'nosuch'")
