"""Issue 12 item 1: exec, attach, cp and port-forward with the real kubectl, the Python client and the CLI.

One runc cluster for the module (``init --detach``, see ``conftest.py``). kubectl 1.32 speaks
WebSocket (``v5.channel.k8s.io``; SPDY tunnelled in a WebSocket for port-forward) by default and
SPDY/3.1 with ``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false`` / ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``,
so the kubectl tests run both ways. Interactive sessions run under a pseudo-terminal. The last
test deletes the pods, runs ``down`` and checks that no container, netns or process is left.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.compat.conftest import Compat
from tests.compat.test_impersonation import _bind
from tests.e2e.conftest import ROOT, E2ECluster
from tests.streaming.conftest import KUBECTL, Pty, kubectl, needs_kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.root, needs_kubectl]

WS = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "true", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "true"}
SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false", "KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
MODES = [pytest.param(WS, id="websocket"), pytest.param(SPDY, id="spdy")]


@pytest.mark.parametrize("mode", MODES)
def test_exec_streams_exit_code_stdin_and_container(streams: E2ECluster, mode: dict[str, str]) -> None:
    c = streams
    r = kubectl(c, "exec", "two", "-c", "c", "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=mode)
    assert (r.returncode, r.stdout, r.stderr.splitlines()[0]) == (3, "out\n", "err"), r.stderr
    r = kubectl(
        c, "exec", "two", "-c", "d", "--", "sh", "-c", "echo $HOSTNAME; cat /proc/1/cmdline", env=mode
    )
    assert r.returncode == 0 and r.stdout.startswith("two\n"), r.stderr
    body = "".join(f"line {i}\n" for i in range(2000))  # more than one frame/message
    r = kubectl(c, "exec", "-i", "two", "-c", "c", "--", "sh", "-c", "wc -l; exit 4", input=body, env=mode)
    assert (r.returncode, r.stdout.strip()) == (4, "2000"), r.stderr
    r = kubectl(c, "exec", "two", "-c", "zzz", "--", "true", env=mode)
    assert r.returncode == 1 and "zzz" in r.stderr, r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_exec_it_is_a_real_terminal(streams: E2ECluster, mode: dict[str, str]) -> None:
    c = streams
    env = {**os.environ, **mode, "KUBECONFIG": str(c.kubeconfig)}
    t = Pty([KUBECTL, "exec", "-it", "two", "-c", "c", "--", "sh"], env, cols=100, rows=30)
    t.read_until(b"# ")
    t.type(b"echo $((6*7))\n")
    t.read_until(b"\n42\r")
    t.type(b"tty; stty size\n")
    t.read_until(b"30 100")
    assert b"/dev/pts/" in t.out
    t.resize(120, 40)  # the kernel sends kubectl SIGWINCH; kubectl sends the new size
    time.sleep(0.5)
    t.type(b"stty size\n")
    t.read_until(b"40 120")
    t.type(b"exit 5\n")
    assert t.wait() == 5


@pytest.mark.parametrize("mode", MODES)
def test_cp_both_ways(streams: E2ECluster, mode: dict[str, str], tmp_path: Path) -> None:
    c = streams
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300_000))
    dest = f"/tmp/cp-{uuid.uuid4().hex[:6]}.bin"
    r = kubectl(c, "cp", str(src), f"two:{dest}", "-c", "c", env=mode)
    assert r.returncode == 0, r.stderr
    r = kubectl(c, "exec", "two", "-c", "c", "--", "md5sum", dest, env=mode)
    import hashlib

    assert r.stdout.split()[0] == hashlib.md5(src.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    r = kubectl(c, "cp", f"two:{dest}", str(back), "-c", "c", env=mode)
    assert r.returncode == 0 and back.read_bytes() == src.read_bytes(), r.stderr


@pytest.mark.parametrize("mode", MODES)
def test_attach_to_a_stdin_tty_container(streams: E2ECluster, mode: dict[str, str]) -> None:
    c = streams
    env = {**os.environ, **mode, "KUBECONFIG": str(c.kubeconfig)}
    t = Pty([KUBECTL, "attach", "-it", "att"], env, cols=90, rows=20)
    t.read_until(b"If you don't see a command prompt")
    marker = uuid.uuid4().hex[:8]
    t.type(f"echo attached-{marker}\n".encode())
    t.read_until(f"attached-{marker}\r\n".encode())
    time.sleep(1)  # kubectl nudges the size (W+1, H+1, then W, H) to make the program redraw
    t.type(b"stty size\n")
    t.read_until(b"20 90")
    os.kill(t.pid, 15)  # leave the container running; kubectl detaches
    t.wait()
    pod = c.pod("default", "att") or {}
    assert (pod.get("status") or {}).get("phase") == "Running"
    # what the attached session typed went to the container's own shell: its log shows it
    assert f"attached-{marker}" in kubectl(c, "logs", "att").stdout


def _port_forward(c: E2ECluster, mode: dict[str, str], target: str) -> tuple[subprocess.Popen[str], int]:
    p = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(c.kubeconfig), "port-forward", "-v=6", target, ":8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **mode},
    )
    assert p.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        if m:
            return p, int(m.group(1))
        if not line and p.poll() is not None:
            break
    p.kill()
    raise AssertionError(f"kubectl port-forward did not start: {p.communicate(timeout=5)}")


@pytest.mark.parametrize("mode", MODES)
def test_port_forward_into_the_pod_netns(streams: E2ECluster, mode: dict[str, str]) -> None:
    c = streams
    p, port = _port_forward(c, mode, "pod/web")
    try:
        for _ in range(3):  # several connections over one session
            r = requests.get(f"http://127.0.0.1:{port}/index.html", timeout=10)
            assert r.status_code == 200 and r.text == "hello-pf\n"
        big = requests.get(f"http://127.0.0.1:{port}/nope", timeout=10)
        assert big.status_code == 404
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    # the transport kubectl used: SPDY tunnelled in a WebSocket by default, plain SPDY when asked
    tunnelled = "negotiated protocol: portforward.k8s.io" in err  # logged by kubectl's tunneling dialer
    assert tunnelled == (mode == WS), err[-2000:]


def test_python_client_exec_and_port_forward(streams: E2ECluster) -> None:
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream

    c = streams
    api = client.CoreV1Api(config.new_client_from_config(str(c.kubeconfig)))

    def execute(script: str, stdin: bool, **kw: Any) -> Any:
        return stream(
            api.connect_get_namespaced_pod_exec,
            "two",
            "default",
            container="c",
            command=["sh", "-c", script],
            stderr=True,
            stdin=stdin,
            stdout=True,
            tty=False,
            **kw,
        )

    assert execute("echo py-$((2+3))", False) == "py-5\n"
    ws = execute("read x; echo got-$x; exit 7", True, _preload_content=False)
    ws.write_stdin("abc\n")
    ws.run_forever(timeout=20)
    assert ws.read_stdout() == "got-abc\n" and ws.returncode == 7
    pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
    s = pf.socket(8080)
    s.settimeout(10)
    s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.") and data.endswith(b"hello-pf\n") and pf.error(8080) is None


def test_centaurusctl_exec_interactive(streams: E2ECluster) -> None:
    c = streams
    ctl = [sys.executable, "-m", "ctl"]
    r = subprocess.run(
        [*ctl, "exec", "-i", "two", "-c", "c", "--", "sh", "-c", "cat; echo e >&2; exit 2"],
        input="via-cli\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=c.env,
        cwd=ROOT,
    )
    assert (r.returncode, r.stdout, r.stderr) == (2, "via-cli\n", "e\n")
    t = Pty(
        [*ctl, "exec", "-it", "two", "-c", "c", "--", "sh"],
        {**c.env, "PYTHONPATH": str(ROOT)},
        cols=80,
        rows=25,
    )
    t.read_until(b"# ", timeout=30)
    t.type(b"echo $((6*7)); stty size\n")
    t.read_until(b"\n42\r")
    t.read_until(b"25 80")
    t.resize(132, 50)
    time.sleep(0.5)
    t.type(b"stty size\n")
    t.read_until(b"50 132")
    t.type(b"exit 6\n")
    assert t.wait() == 6


def _raw_upgrade(c: Compat, path: str, token: str | None = None, ws: bool = True) -> requests.Response:
    """An upgrade request that should be refused: the refusal (a Status) is what comes back."""
    headers = {"Connection": "Upgrade"}
    if ws:
        headers |= {
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
        }
    else:
        headers |= {"Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"}
    return c.req("POST" if not ws else "GET", path, token=token, headers=headers)


def test_authorization_tenancy_and_vm_pods(streams: E2ECluster) -> None:
    c = Compat(streams.data_dir)
    c.load()
    t = "st-" + uuid.uuid4().hex[:6]
    admin = c.tenant(t)
    q = "?command=true&stdout=1"
    # a tenant user with only "get pods": exec, attach and port-forward are 403, before any lookup
    bob = c.token("bob", tenant=t)
    _bind(
        c, t, "default", "pod-getter", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}], "bob"
    )
    for sub, query in (("exec", q), ("attach", "?stdout=1"), ("portforward", "?ports=80")):
        r = _raw_upgrade(c, f"/api/v1/namespaces/default/pods/two/{sub}{query}", token=bob)
        assert r.status_code == 403, (sub, r.text)
        assert f'cannot create resource "pods/{sub}"' in r.json()["message"], r.text
    r = _raw_upgrade(c, f"/api/v1/namespaces/default/pods/two/exec{q}", token=bob, ws=False)  # SPDY too
    assert r.status_code == 403, r.text
    # granted create pods/exec: the short path is bob's tenant, where there is no pod "two": 404
    _bind(
        c,
        t,
        "default",
        "pod-exec",
        [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
        "bob",
    )
    r = _raw_upgrade(c, f"/api/v1/namespaces/default/pods/two/exec{q}", token=bob)
    assert r.status_code == 404, r.text
    # the tenant's admin does not see the system tenant's pod either, and cannot name its tenant
    r = _raw_upgrade(c, f"/api/v1/namespaces/default/pods/two/exec{q}", token=admin)
    assert r.status_code == 404, r.text
    r = _raw_upgrade(c, f"/api/v1/tenants/system/namespaces/default/pods/two/exec{q}", token=admin)
    assert r.status_code in (403, 404), r.text
    cfg = c.kubeconfig_for(admin, f"{t}-admin")
    r = subprocess.run(
        [KUBECTL, "--kubeconfig", str(cfg), "exec", "two", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "NotFound" in r.stderr, r.stderr
    # a VM pod answers exec and attach with a clear Status (it never needs a node for that)
    vm = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "vm1", "namespace": "default"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": "nowhere"},
            "virtualMachine": {
                "name": "vm1",
                "image": "cirros-tiny:latest",
                "resources": {"limits": {"memory": "128Mi"}},
                "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE06F3UcPpyaRGZAVr2fzYTwR0mNFAwj8mJiZrlPnqdK t@c",
            },
        },
    }
    c.ok("POST", "/api/v1/namespaces/default/pods", json=vm)
    for sub, query in (("exec", q), ("attach", "?stdout=1")):
        r = _raw_upgrade(c, f"/api/v1/namespaces/default/pods/vm1/{sub}{query}")
        assert r.status_code == 400 and "virtual machine" in r.json()["message"], r.text
    c.ok("DELETE", "/api/v1/namespaces/default/pods/vm1")
    # a GET without an upgrade is a clear 400, and the one-shot JSON exec still works
    r = c.req("GET", f"/api/v1/namespaces/default/pods/two/exec{q}")
    assert r.status_code == 400 and "Upgrade request required" in r.json()["message"], r.text
    r = c.req(
        "POST",
        "/api/v1/namespaces/default/pods/two/exec",
        json={"command": ["sh", "-c", "echo x; exit 2"], "container": "c"},
    )
    assert r.status_code == 200 and r.json()["exitCode"] == 2 and r.json()["stdout"] == "x\n", r.text


def test_port_forward_to_a_closed_port_reports_the_error(streams: E2ECluster) -> None:
    c = streams
    p = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(c.kubeconfig), "port-forward", "pod/web", ":9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    try:
        assert m, line
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{m.group(1)}/", timeout=10)
    finally:
        time.sleep(0.5)
        p.terminate()
        _, err = p.communicate(timeout=10)
    assert "cannot connect to port 9 in the pod" in err, err


def test_teardown_leaves_nothing(streams: E2ECluster) -> None:
    streams.teardown()
