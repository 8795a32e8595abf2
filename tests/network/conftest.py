"""Fixtures for the network operator's tests: a real API server, hollow transit daemons in
their own process (they count RPCs, see :mod:`ctl.network.hollow`) and helpers to start
``centaurusctl serve netoperator`` processes and to create the network objects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctl.client import ApiError, Client
from ctl.transit.client import TransitClient
from tests.cluster import ROOT, ApiServerProcess, RoleProcess, die_with_parent
from tests.helpers import eventually

MIZAR = "mizar.centaurus.io/v1"


class Hollow:
    """A process serving hollow transit daemons ``names`` under ``dir``."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        self.dir = directory
        self.names = names
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            die_with_parent(
                [
                    sys.executable,
                    "-m",
                    "ctl.network.hollow",
                    "--dir",
                    str(directory),
                    "--names",
                    ",".join(names),
                ]
            ),
            cwd=ROOT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not (directory / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hollow transit daemons did not start")
            time.sleep(0.05)

    def socket(self, name: str) -> str:
        return str(self.dir / f"{name}.sock")

    def client(self, name: str) -> TransitClient:
        return TransitClient(self.socket(name), timeout=10)

    def rpcs(self, name: str) -> dict[str, int]:
        r: dict[str, int] = self.client(name).request("GET", "/v1/rpcs")
        return r

    def objects(self, name: str, kind: str) -> list[dict[str, Any]]:
        return self.client(name).list(kind)

    def mutations(self) -> int:
        """PUT and DELETE requests over every daemon."""
        return sum(
            n for d in self.names for k, n in self.rpcs(d).items() if k.split()[0] in ("PUT", "DELETE")
        )

    def mutated(self, name: str) -> int:
        """PUT and DELETE requests on one daemon since its counts were last reset."""
        return sum(n for k, n in self.rpcs(name).items() if k.split()[0] in ("PUT", "DELETE"))

    def reset(self) -> None:
        for d in self.names:
            self.client(d).request("DELETE", "/v1/rpcs")

    def wipe(self, name: str) -> None:
        self.client(name).request("POST", "/v1/wipe")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def operator(api: ApiServerProcess, log: Path, *extra: str) -> RoleProcess:
    return RoleProcess(
        "netoperator", ["--server", api.url, "--check-interval", "0.5", "--log-level", "INFO", *extra], log
    ).start()


@pytest.fixture()
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerProcess]:
    """A fresh API server per test: droplets are cluster-wide, so tests must not share them."""
    d = tmp_path_factory.mktemp("net")
    a = ApiServerProcess(d).start()
    try:
        yield a
    finally:
        a.stop()


async def make(
    client: Client,
    kind: str,
    name: str,
    spec: dict[str, Any],
    tenant: str | None = None,
    namespace: str | None = None,
    api_version: str = MIZAR,
) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}
    if namespace:
        body["metadata"]["namespace"] = namespace
    return await client.create(body, namespace=namespace, tenant=tenant)


async def droplets(client: Client, hollow: Hollow, ips: dict[str, str] | None = None) -> None:
    for i, n in enumerate(hollow.names):
        ip = (ips or {}).get(n, f"192.168.{100 + i // 250}.{1 + i % 250}")
        mac = "02:00:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
        try:
            await make(
                client, "Droplet", n, {"ip": ip, "mac": mac, "itf": "eth0", "transitd": hollow.socket(n)}
            )
        except ApiError as e:
            if e.code != 409:
                raise


async def phase(
    client: Client,
    kind: str,
    name: str,
    want: str = "Provisioned",
    tenant: str | None = None,
    namespace: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    async def get() -> dict[str, Any] | None:
        o = await client.get(
            kind + ".mizar.centaurus.io" if kind != "networks" else kind, name, namespace, tenant
        )
        return o if (o.get("status") or {}).get("phase") == want else None

    try:
        return await eventually(get, timeout, 0.05, f"{kind}/{name} {want}")
    except AssertionError:
        o = await client.get(
            kind + ".mizar.centaurus.io" if kind != "networks" else kind, name, namespace, tenant
        )
        raise AssertionError(f"{kind}/{name} not {want}: {json.dumps(o.get('status'))}") from None


async def settled(
    client: Client,
    kind: str,
    name: str,
    tenant: str | None = None,
    namespace: str | None = None,
    timeout: float = 30.0,
) -> tuple[str, str | None]:
    """(phase, reason) once the operator decided: Provisioned or Failed."""

    async def get() -> tuple[str, str | None] | None:
        st = (await client.get(kind + ".mizar.centaurus.io", name, namespace, tenant)).get("status") or {}
        return (st["phase"], st.get("reason")) if st.get("phase") in ("Provisioned", "Failed") else None

    r: tuple[str, str | None] = await eventually(get, timeout, 0.05, f"{kind}/{name} decided")
    return r


async def add_testbed_droplets(client: Client, tb: Any, hosts: list[Any]) -> None:
    """One Droplet per testbed host (``PREFIX-NAME``), its transit daemon on the host's socket."""
    for h in hosts:
        await make(
            client,
            "Droplet",
            f"{tb.prefix}-{h.name}",
            {"ip": h.ip, "mac": h.mac, "itf": "sub0", "transitd": str(h.socket)},
        )
