"""The pod worker's network step: a pod's VPC Endpoint, before its containers start.

When the node runs with VPC networking, every container pod (not ``hostNetwork``) goes through
:meth:`PodNetworking.prepare` before the runtime's ``sync_pod``:

1. the pod's Network is the label ``arktos.centaurus.io/network`` (default ``default``) in the
   pod's tenant; while it does not exist or is not ``Ready`` the pod waits (the worker reports
   ``NetworkNotReady`` as the containers' waiting reason, a ``PodReadyToStartContainers=False``
   condition and a Warning Event, and is woken when the Network becomes Ready);
2. the netns and veth pair are made (:meth:`agent.cni.vpc.VpcPlumbing.plumb`);
3. the Endpoint is created in the pod's namespace, named ``<pod>-<uid[:8]>``, with
   ``spec.subnet`` (the Network's subnet), ``spec.droplet`` (this host), ``spec.veth``,
   ``spec.netns``, ``spec.pod``, labels naming the droplet and the pod UID, and an owner
   reference to the pod (the garbage collector's safety net);
4. the step waits (bounded, and cut short by any new event on the pod) for the operator to set
   ``Provisioned``: allocated IP and MAC, gateway, programmed on this host and the subnet's
   bouncers, ``transit_agent`` attached to the veth;
5. ``eth0`` is configured from the Endpoint's status (:meth:`~agent.cni.vpc.VpcPlumbing.configure`),
   and the runtime then joins that netns; ``status.podIP`` is the Endpoint's IP.

Endpoints are followed through one informer per partition client (Endpoints labelled with this
droplet, across tenants), Networks through another, so a burst of pods costs no polling.
:meth:`PodNetworking.release` deletes the Endpoint once the runtime has removed the netns (the
operator frees the IP and unprograms it everywhere); :meth:`PodNetworking.collect` deletes
Endpoints of this droplet whose pod is gone (after a crash, at adoption).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from agent.cni.bridge import NetworkError
from agent.cni.vpc import VpcPlumbing
from ctl.client import ApiError, Client
from ctl.client.informer import Informer
from ctl.types.kinds import SYSTEM_TENANT
from ctl.util.tasks import cancel_and_wait

log = logging.getLogger("centaurus.agent.podnet")

NETWORK_LABEL = "arktos.centaurus.io/network"
DROPLET_LABEL = "mizar.centaurus.io/droplet"
POD_UID_LABEL = "mizar.centaurus.io/pod-uid"
ENDPOINT_KIND = "endpoints.mizar.centaurus.io"
CONDITION = "PodReadyToStartContainers"

Waiting = tuple[str, str]  # (reason, message) while a pod cannot start yet


def endpoint_name(pod: dict[str, Any]) -> str:
    md = pod.get("metadata") or {}
    return f"{str(md.get('name') or 'pod')[:240]}-{str(md.get('uid') or '')[:8]}"


def network_of(pod: dict[str, Any]) -> str:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(labels.get(NETWORK_LABEL) or "default")


class _Partition:
    """The informers of one partition client."""

    def __init__(self, client: Client, droplet: str, on_endpoint: Callable[[str], None],
                 on_network: Callable[[str], None]) -> None:  # fmt: skip
        self.networks = Informer(client, "networks", tenant="all")
        self.endpoints = Informer(
            client, ENDPOINT_KIND, tenant="all", label_selector=f"{DROPLET_LABEL}={droplet}"
        )
        self.endpoints.add_handler(lambda typ, o, old: on_endpoint(_key(o)))
        self.networks.add_handler(lambda typ, o, old: on_network(_key(o)))
        self.tasks = [self.networks.start(), self.endpoints.start()]

    async def synced(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(
                asyncio.gather(self.networks.synced.wait(), self.endpoints.synced.wait()), timeout
            )
        except TimeoutError:
            return False
        return True


def _key(o: dict[str, Any]) -> str:
    md = o.get("metadata") or {}
    return f"{md.get('tenant') or ''}/{md.get('namespace') or ''}/{md.get('name') or ''}"


class PodNetworking:
    """VPC endpoints for the pods of one node (droplet)."""

    def __init__(
        self,
        plumbing: VpcPlumbing,
        droplet: str,
        wake: Callable[[str], None] | None = None,
        provision_timeout: float = 10.0,
    ) -> None:
        self.plumbing = plumbing
        self.droplet = droplet
        self.wake = wake or (lambda uid: None)
        self.provision_timeout = provision_timeout
        self._parts: dict[int, _Partition] = {}
        self._changed: dict[str, asyncio.Event] = {}  # endpoint key -> set on its next event
        self._waiting: dict[str, set[str]] = {}  # network key -> uids of pods waiting for it

    @staticmethod
    def applies(pod: dict[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        return not spec.get("hostNetwork") and not spec.get("virtualMachine")

    def _part(self, client: Client) -> _Partition:
        p = self._parts.get(id(client))
        if p is None:
            p = self._parts[id(client)] = _Partition(
                client, self.droplet, self._endpoint_changed, self._network_changed
            )
        return p

    def _endpoint_changed(self, key: str) -> None:
        ev = self._changed.get(key)
        if ev is not None:
            ev.set()

    def _network_changed(self, key: str) -> None:
        for uid in self._waiting.pop(key, set()):
            self.wake(uid)

    async def prepare(self, client: Client, pod: dict[str, Any], wake: asyncio.Event) -> Waiting | None:
        """Make the pod's network ready; None when it is, else why it must wait (retry later)."""
        md = pod.get("metadata") or {}
        uid = str(md.get("uid") or "")
        if self.plumbing.ready(uid):
            return None
        part = self._part(client)
        if not await part.synced(self.provision_timeout):
            return "NetworkNotReady", "waiting for the API server (networks and endpoints)"
        tenant = str(md.get("tenant") or SYSTEM_TENANT)
        namespace = str(md.get("namespace") or "default")
        net_name = network_of(pod)
        net_key = f"{tenant}//{net_name}"
        net = part.networks.store.get(net_key)
        nst = (net or {}).get("status") or {}
        if net is None or nst.get("phase") != "Ready" or not nst.get("subnet"):
            self._waiting.setdefault(net_key, set()).add(uid)
            if net is None:
                return "NetworkNotReady", f"network {net_name} does not exist in tenant {tenant}"
            return "NetworkNotReady", f"network {net_name} is {nst.get('phase') or 'Pending'}, not Ready yet"
        netns, veth = await self.plumbing.plumb(uid)
        name = endpoint_name(pod)
        key = f"{tenant}/{namespace}/{name}"
        ev = self._changed.setdefault(key, asyncio.Event())
        try:
            if part.endpoints.store.get(key) is None:
                await self._create(client, pod, tenant, namespace, name, str(nst["subnet"]), netns, veth)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.provision_timeout
            while True:
                ep = part.endpoints.store.get(key)
                st = (ep or {}).get("status") or {}
                if ep is not None and (ep.get("spec") or {}).get("veth") == veth:
                    if st.get("phase") == "Provisioned" and st.get("ip"):
                        break
                    if st.get("phase") == "Failed":
                        return "EndpointFailed", f"endpoint {name}: {st.get('reason')}: {st.get('message')}"
                left = deadline - loop.time()
                if left <= 0 or wake.is_set():
                    why = st.get("message") or "waiting for the network operator"
                    return "EndpointNotProvisioned", f"endpoint {name} not provisioned yet: {why}"
                ev.clear()
                waits = [asyncio.ensure_future(ev.wait()), asyncio.ensure_future(wake.wait())]
                try:
                    await asyncio.wait(waits, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await cancel_and_wait(waits)
        finally:
            self._changed.pop(key, None)
        try:
            await self.plumbing.configure(
                uid, str(st["ip"]), int(st.get("prefixLength") or 32), str(st["mac"]), str(st["gateway"])
            )
        except (NetworkError, KeyError, ValueError) as e:
            return "NetworkSetupFailed", f"endpoint {name}: {e}"
        log.debug("pod %s/%s/%s: endpoint %s ip %s", tenant, namespace, md.get("name"), name, st["ip"])
        return None

    async def _create(self, client: Client, pod: dict[str, Any], tenant: str, namespace: str, name: str,
                      subnet: str, netns: str, veth: str) -> None:  # fmt: skip
        md = pod["metadata"]
        body = {
            "apiVersion": "mizar.centaurus.io/v1",
            "kind": "Endpoint",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {DROPLET_LABEL: self.droplet, POD_UID_LABEL: md["uid"]},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": md["name"],
                        "uid": md["uid"],
                        "controller": False,
                        "blockOwnerDeletion": False,
                    }
                ],
            },
            "spec": {
                "type": "simple",
                "subnet": subnet,
                "droplet": self.droplet,
                "veth": veth,
                "netns": netns,
                "pod": md["name"],
            },
        }
        try:
            await client.create(body, namespace=namespace, tenant=tenant)
        except ApiError as e:
            if e.code != 409:
                raise

    async def release(self, client: Client, pod: dict[str, Any]) -> None:
        """Delete the pod's Endpoint (the operator frees its IP and unprograms it). Missing is fine."""
        md = pod.get("metadata") or {}
        try:
            await client.delete(
                ENDPOINT_KIND,
                endpoint_name(pod),
                str(md.get("namespace") or "default"),
                str(md.get("tenant") or SYSTEM_TENANT),
            )
        except ApiError as e:
            if e.code != 404:
                raise

    async def collect(self, clients: list[Client], live: set[str]) -> int:
        """Delete this droplet's Endpoints whose pod UID is not in ``live``; returns how many."""
        n = 0
        for client in clients:
            part = self._part(client)
            if not await part.synced(self.provision_timeout):
                continue
            for ep in list(part.endpoints.store.values()):
                md = ep.get("metadata") or {}
                if (md.get("labels") or {}).get(POD_UID_LABEL) in live:
                    continue
                try:
                    await client.delete(
                        ENDPOINT_KIND, md.get("name", ""), md.get("namespace"), md.get("tenant")
                    )
                    n += 1
                except ApiError as e:
                    if e.code != 404:
                        log.warning("stale endpoint %s: %s", _key(ep), e)
        if n:
            log.info("droplet %s: deleted %d endpoints of pods that are gone", self.droplet, n)
        return n

    async def stop(self) -> None:
        for p in self._parts.values():
            await cancel_and_wait(p.tasks)
        self._parts.clear()
