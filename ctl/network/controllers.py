"""The network operator's reconcilers: Droplet, VPC, Subnet, Endpoint and Network.

Each is a :class:`ctl.controllers.base.Controller` (work queue, workers, back-off on
conflicts, a failing object parked after one warning) over the shared informers, and all
share one :class:`~ctl.network.state.NetState`: the :class:`~ctl.network.topology.Topology`, the
:class:`~ctl.network.allocator.Allocator` and one
:class:`~ctl.network.programmer.DropletProgrammer` per droplet.

* Droplet: keeps the topology's droplet (substrate IP/MAC, transitd address) and a programmer
  for it; every other droplet gets its substrate entry; status ``Ready``/``Unreachable``. A
  droplet that goes away, or whose Node is NotReady past the grace period
  (:mod:`ctl.network.nodehealth`; status reason ``NodeNotReady``, a Warning Event), re-queues
  the VPCs and subnets placed on it: they are re-placed on placeable droplets and only the
  droplets the move concerns are re-programmed.
* VPC: VNI (allocated, or the hand-set ``spec.vni`` if free: else Failed ``VNIInUse``),
  dividers placed (:func:`ctl.network.placement.place`), Divider records, status.
* Subnet: inside its VPC (else Failed ``OutsideVPC``), not overlapping an older sibling (else
  Failed ``SubnetOverlap``), bouncers placed, Bouncer records, status with gateway.
* Endpoint: waits (phase Init, with a message) for its subnet and droplet; IP from the
  allocator (hand-set ``spec.ip`` if free: else Failed ``IPInUse``), MAC derived unless set;
  programmed on its host and its subnet's bouncers only; then ``Provisioned`` with
  ``programmed`` and ``observedGeneration``. An endpoint whose status already says so and whose
  droplets already hold it costs no RPC and no write (an operator restart re-programs
  nothing). Deleted: removed from every droplet that had it, IP released.
* Network (Arktos): a VPC and a Subnet of the same name and CIDR (``spec.cidr``, default
  10.0.0.0/16; tenants may share it), owned by the Network; ``Pending`` -> ``Ready``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from ctl.client import ApiError
from ctl.client.informer import SharedInformer, SharedInformers
from ctl.controllers.base import Controller, HashRange
from ctl.network import objects as ob
from ctl.network.allocator import Taken, ip_record
from ctl.network.nodehealth import node_name
from ctl.network.placement import place
from ctl.network.programmer import ProgramError
from ctl.network.state import WAIT_RETRY, NetState
from ctl.network.topology import DropletInfo, EndpointInfo, SubnetInfo, VpcInfo
from ctl.types.kinds import Kind

log = logging.getLogger("centaurus.network")
Obj = dict[str, Any]


class NetController(Controller):
    kind: Kind

    def __init__(self, state: NetState, workers: int = 2) -> None:
        self.state = state
        super().__init__(state.client, state.informers, state.recorder, HashRange(), workers)
        state.controllers[self.name] = self

    def setup(self, informers: SharedInformers) -> None:
        self.primary = self.inf = informers.get(self.kind)
        self.inf.add_handler(lambda typ, obj, old: self.queue.add(ob_key(obj)))

    def _parked(self, obj: Obj) -> bool:
        st = ob.status(obj)
        return st.get("phase") == ob.FAILED and st.get("observedGeneration") == ob.generation(obj)


def ob_key(obj: Obj) -> str:
    from ctl.types.meta import object_key

    return object_key(obj)


def _tenant_of(key: str) -> str:
    return key.split("/", 1)[0]


def _name_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------------- droplets


class DropletController(NetController):
    name = "droplet"
    kind = ob.DROPLET

    def setup(self, informers: SharedInformers) -> None:
        super().setup(informers)
        self.nodes = informers.get(ob.NODE)

        def node_changed(typ: str, node: Obj, old: Obj | None) -> None:
            for d in self.inf.list():
                if node_name(d) == ob.name(node):
                    self.queue.add(ob_key(d))

        self.nodes.add_handler(node_changed)

    async def sync(self, key: str) -> float | None:
        st = self.state
        name = _name_of(key)
        obj = self.inf.get_key(key)
        topo = st.topology
        if obj is None:
            if name in topo.droplets:
                touched = topo.set_droplet(None, name)
                p = st.programmers.pop(name, None)
                if p is not None:
                    await p.stop()
                    st.retune()
                self._replace(name)
                await st.converge(touched)
            return None
        spec = ob.spec(obj)
        info = DropletInfo(name, str(spec.get("ip")), str(spec.get("mac")), str(spec.get("transitd") or ""))
        if topo.droplets.get(name) != info:
            new = name not in topo.droplets
            touched = topo.set_droplet(info, name)
            p = st.programmer(name)
            p.converge_all()
            if new:
                self._replace(None)
            asyncio.ensure_future(st.converge(touched)).add_done_callback(
                lambda f: f.cancelled() or f.exception()
            )
        v = st.health.verdict(obj, self.nodes.get_key(f"//{node_name(obj)}"))
        if v.excluded != (name in st.excluded):
            if v.excluded:
                st.excluded.add(name)
                log.info("droplet %s excluded from placement: %s", name, v.message)
                st.recorder.warning(obj, "NodeNotReady", v.message)
            else:
                st.excluded.discard(name)
                log.info("droplet %s placeable again", name)
            self._replace(name if v.excluded else None)
        p = st.programmer(name)
        phase = {True: "Ready", False: "Unreachable", None: "Unknown"}[p.reachable]
        want: Obj = {"phase": phase, "observedGeneration": ob.generation(obj)}
        if p.pid is not None:
            want["transitdPID"] = p.pid
        if v.excluded:
            want.update(reason="NodeNotReady", message=v.message.split(" (grace")[0])
        await st.write_status(obj, want)
        return v.recheck

    def _replace(self, gone: str | None) -> None:
        """Re-queue what is placed on a droplet that went (or, on a new droplet, what is short)."""
        for cname, field in (("vpc", "dividers"), ("subnet", "bouncers")):
            c = self.state.controllers.get(cname)
            if c is None or c.primary is None:
                continue
            for o in c.primary.list():
                placed = ob.status(o).get(field) or []
                if (gone is not None and gone in placed) or (
                    gone is None and len(placed) < int(ob.spec(o).get(field) or 1)
                ):
                    c.queue.add(ob_key(o))


# -------------------------------------------------------------------------------------- VPCs


class VpcController(NetController):
    name = "vpc"
    kind = ob.VPC

    async def sync(self, key: str) -> float | None:
        st = self.state
        topo = st.topology
        obj = self.inf.get_key(key)
        if obj is None:
            full = topo.set_vpc(key, None)
            uid = st.uids.pop(key, None)
            if uid:
                for r in st.allocator.owned_by(uid, "vni"):
                    await st.allocator.release(r, uid)
            await self._sync_records(key, [])
            self._subnets(key)
            await st.converge(full=full)
            return None
        st.uids[key] = ob.uid(obj)
        if self._parked(obj):
            return None
        spec = ob.spec(obj)
        try:
            vni = await st.allocator.vni_for(obj, spec.get("vni"))
        except Taken as e:
            await st.fail(obj, "VNIInUse", str(e))
            return None
        for r in st.allocator.owned_by(ob.uid(obj), "vni"):
            if r != f"vni-{vni}":
                await st.allocator.release(r, ob.uid(obj))
        if not topo.droplets:
            return await st.wait(obj, "waiting for a droplet to place dividers on")
        old = topo.vpcs.get(key)
        current = old.dividers if old else list(ob.status(obj).get("dividers") or [])
        dividers = place(int(spec.get("dividers") or 1), current, st.placeable(), topo.load(), key)
        info = VpcInfo(key, vni, str(spec.get("cidr")), dividers)
        if old != info:
            full = topo.set_vpc(key, info) | set(dividers)
            await st.converge(full=full)
            self._subnets(key)
        await self._sync_records(key, dividers, obj)
        want = {
            "phase": ob.PROVISIONED,
            "vni": vni,
            "dividers": dividers,
            "observedGeneration": ob.generation(obj),
        }
        await st.write_status(obj, want)
        st.enqueue("network", [k for k in self._networks(obj)])
        return None

    def _networks(self, obj: Obj) -> list[str]:
        return [
            f"{ob.tenant(obj)}//{r.get('name')}"
            for r in ob.md(obj).get("ownerReferences") or []
            if r.get("kind") == "Network"
        ]

    def _subnets(self, vpc_key: str) -> None:
        c = self.state.controllers.get("subnet")
        if c is not None and c.primary is not None:
            t, n = _tenant_of(vpc_key), _name_of(vpc_key)
            for s in c.primary.list():
                if ob.tenant(s) == t and ob.spec(s).get("vpc") == n:
                    c.queue.add(ob_key(s))

    async def _sync_records(self, key: str, droplets: list[str], owner: Obj | None = None) -> None:
        await sync_placement_records(self.state, ob.DIVIDER, "vpc", key, droplets, owner)


async def sync_placement_records(
    st: NetState, kind: Kind, field: str, key: str, droplets: list[str], owner: Obj | None
) -> None:
    """Make the Bouncer/Divider records of one subnet/VPC match its placement."""
    t, n = _tenant_of(key), _name_of(key)
    inf = st.informers.get(kind)
    have = {ob.name(o): o for o in inf.list() if ob.tenant(o) == t and ob.spec(o).get(field) == n}
    want = {f"{n}-{d}": d for d in droplets}
    for rname, o in have.items():
        if rname not in want or ob.spec(o).get("droplet") != want[rname]:
            try:
                await st.client.delete(kind, rname, tenant=t)
            except ApiError as e:
                if e.code != 404:
                    raise
    for rname, d in want.items():
        if rname in have and ob.spec(have[rname]).get("droplet") == d:
            continue
        dinfo = st.topology.droplets.get(d)
        body: Obj = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": rname},
            "spec": {field: n, "droplet": d, "ip": dinfo.ip if dinfo else ""},
        }
        if owner is not None:
            body["metadata"]["ownerReferences"] = [
                ob.owner_ref(owner, ob.VPC if field == "vpc" else ob.SUBNET)
            ]
            if field == "subnet":
                body["spec"]["vpc"] = ob.spec(owner).get("vpc")
        try:
            await st.client.create(body, tenant=t)
        except ApiError as e:
            if e.code != 409:
                raise


# ----------------------------------------------------------------------------------- subnets


class SubnetController(NetController):
    name = "subnet"
    kind = ob.SUBNET

    async def sync(self, key: str) -> float | None:
        st = self.state
        topo = st.topology
        obj = self.inf.get_key(key)
        if obj is None:
            full = topo.set_subnet(key, None)
            await sync_placement_records(st, ob.BOUNCER, "subnet", key, [], None)
            await st.converge(full=full)
            return None
        if self._parked(obj):
            return None
        spec = ob.spec(obj)
        t = ob.tenant(obj)
        vkey = ob.tkey(t, str(spec.get("vpc")))
        vpc = topo.vpcs.get(vkey)
        if vpc is None:
            return await st.wait(obj, f"waiting for VPC {spec.get('vpc')} to be provisioned")
        cidr = str(spec.get("cidr"))
        net = ipaddress.IPv4Network(cidr)
        if not net.subnet_of(ipaddress.IPv4Network(vpc.cidr)):
            await st.fail(obj, "OutsideVPC", f"subnet {cidr} is not inside its VPC's {vpc.cidr}")
            return None
        for o in self.inf.list():
            if (
                o is obj
                or ob.tenant(o) != t
                or ob.name(o) == ob.name(obj)
                or ob.spec(o).get("vpc") != spec.get("vpc")
            ):
                continue
            if ob.status(o).get("phase") == ob.FAILED:
                continue
            try:
                overlaps = ipaddress.IPv4Network(str(ob.spec(o).get("cidr"))).overlaps(net)
            except ValueError:
                continue
            # the provisioned one wins, then the older one, then the name
            mine = (
                ob.status(obj).get("phase") != ob.PROVISIONED,
                ob.md(obj).get("creationTimestamp") or "",
                ob.name(obj),
            )
            theirs = (
                ob.status(o).get("phase") != ob.PROVISIONED,
                ob.md(o).get("creationTimestamp") or "",
                ob.name(o),
            )
            if overlaps and theirs < mine:
                await st.fail(
                    obj,
                    "SubnetOverlap",
                    f"subnet {cidr} overlaps subnet {ob.name(o)} ({ob.spec(o).get('cidr')})",
                )
                return None
        if not topo.droplets:
            return await st.wait(obj, "waiting for a droplet to place bouncers on")
        old = topo.subnets.get(key)
        current = old.bouncers if old else list(ob.status(obj).get("bouncers") or [])
        bouncers = place(int(spec.get("bouncers") or 1), current, st.placeable(), topo.load(), key)
        info = SubnetInfo(key, vkey, vpc.vni, str(net), ob.gateway_of(str(net)), bouncers)
        if old != info:
            full = topo.set_subnet(key, info) | set(bouncers)
            await st.converge(full=full)
            eps = st.informers.get(ob.ENDPOINT)
            st.enqueue("endpoint", [ob_key(e) for e in eps.by_index("subnet", key)])
        await sync_placement_records(st, ob.BOUNCER, "subnet", key, bouncers, obj)
        want = {
            "phase": ob.PROVISIONED,
            "vni": vpc.vni,
            "gateway": info.gateway,
            "prefixLength": net.prefixlen,
            "bouncers": bouncers,
            "observedGeneration": ob.generation(obj),
        }
        await st.write_status(obj, want)
        st.enqueue(
            "network",
            [
                f"{t}//{r.get('name')}"
                for r in ob.md(obj).get("ownerReferences") or []
                if r.get("kind") == "Network"
            ],
        )
        return None


# --------------------------------------------------------------------------------- endpoints


class EndpointController(NetController):
    name = "endpoint"
    kind = ob.ENDPOINT

    def setup(self, informers: SharedInformers) -> None:
        super().setup(informers)
        self.inf.add_index("subnet", lambda o: [ob.tkey(ob.tenant(o), str(ob.spec(o).get("subnet")))])

    async def sync(self, key: str) -> float | None:
        st = self.state
        topo = st.topology
        obj = self.inf.get_key(key)
        if obj is None:
            old = topo.endpoints.get(key)
            targets = topo.endpoint_targets(key)
            touched = topo.set_endpoint(key, None)
            uid = st.uids.pop(key, None)
            if old is not None and uid:
                await st.allocator.release(ip_record(old.vni, old.ip), uid)
            if uid:
                for r in st.allocator.owned_by(uid, "ip"):
                    await st.allocator.release(r, uid)
            for d in targets:
                touched.setdefault(d, set())
            await st.converge(touched)
            return None
        st.uids[key] = ob.uid(obj)
        if self._parked(obj):
            return None
        spec, status = ob.spec(obj), ob.status(obj)
        t = ob.tenant(obj)
        skey = ob.tkey(t, str(spec.get("subnet")))
        sub = topo.subnets.get(skey)
        if sub is None:
            return await st.wait(obj, f"waiting for subnet {spec.get('subnet')} to be provisioned")
        droplet = str(spec.get("droplet") or "")
        if droplet not in topo.droplets:
            return await st.wait(obj, f"waiting for droplet {droplet or '(spec.droplet)'}")
        veth = str(spec.get("veth") or "")
        if not veth:
            return await st.wait(obj, "waiting for spec.veth (the host side of the endpoint's veth)")
        wanted = spec.get("ip") or (status.get("ip") if status.get("vni") == sub.vni else None)
        try:
            ip = await st.allocator.ip_for(obj, sub.vni, sub.cidr, wanted)
        except Taken as e:
            if spec.get("ip"):
                reason = "IPInUse" if "in use" in str(e) else "InvalidIP"
                await st.fail(obj, reason, str(e))
                return None
            raise
        for r in st.allocator.owned_by(ob.uid(obj), "ip"):
            if r != ip_record(sub.vni, ip):
                await st.allocator.release(r, ob.uid(obj))
        mac = str(spec.get("mac") or ob.mac_for(ip))
        info = EndpointInfo(key, skey, sub.vni, ip, mac, droplet, veth)
        touched = topo.set_endpoint(key, info)
        for d in status.get("programmed") or []:  # droplets that had it before (a move, a restart)
            touched.setdefault(d, set()).add(("endpoints", f"{sub.vni}/{ip}"))
        try:
            await st.converge(touched)
        except ProgramError as e:
            await st.write_status(obj, {"phase": ob.INIT, "ip": ip, "mac": mac, "message": str(e)})
            return WAIT_RETRY
        except TimeoutError:
            await st.write_status(
                obj, {"phase": ob.INIT, "ip": ip, "mac": mac, "message": "waiting for transit daemons"}
            )
            return WAIT_RETRY
        want = {
            "phase": ob.PROVISIONED,
            "ip": ip,
            "mac": mac,
            "vni": sub.vni,
            "gateway": sub.gateway,
            "prefixLength": ipaddress.IPv4Network(sub.cidr).prefixlen,
            "host": topo.droplets[droplet].ip,
            "programmed": topo.endpoint_targets(key),
            "observedGeneration": ob.generation(obj),
        }
        await st.write_status(obj, want)
        return None


# ---------------------------------------------------------------------------------- networks


class NetworkController(NetController):
    name = "network"
    kind = ob.NETWORK

    async def sync(self, key: str) -> float | None:
        st = self.state
        obj = self.inf.get_key(key)
        if obj is None:
            return None  # its VPC and Subnet are owned by it: the garbage collector removes them
        spec = ob.spec(obj)
        t = ob.tenant(obj)
        if spec.get("type", "mizar") != "mizar":
            return None
        cidr = str(spec.get("cidr") or ob.DEFAULT_CIDR)
        vname = str(spec.get("vpcID") or ob.name(obj))
        snet: str | None = None
        if not spec.get("vpcID"):
            snet = ob.name(obj)
            own = [ob.owner_ref(obj, ob.NETWORK)]
            for kind, body in (
                (ob.VPC, {"cidr": cidr, "dividers": 1}),
                (ob.SUBNET, {"vpc": vname, "cidr": cidr, "bouncers": 1}),
            ):
                if st.informers.get(kind).get_key(ob.tkey(t, vname)) is None:
                    o = {
                        "apiVersion": kind.api_version,
                        "kind": kind.kind,
                        "metadata": {"name": vname, "ownerReferences": own},
                        "spec": body,
                    }
                    try:
                        await st.client.create(o, tenant=t)
                    except ApiError as e:
                        if e.code != 409:
                            raise
        vpc = st.informers.get(ob.VPC).get_key(ob.tkey(t, vname))
        sub = st.informers.get(ob.SUBNET).get_key(ob.tkey(t, snet)) if snet else None
        ready = vpc is not None and ob.status(vpc).get("phase") == ob.PROVISIONED
        if snet:
            ready = ready and sub is not None and ob.status(sub).get("phase") == ob.PROVISIONED
        want: Obj = {"phase": ob.READY if ready else ob.PENDING, "vpc": vname, "cidr": cidr}
        if snet:
            want["subnet"] = snet
        if vpc is not None and ob.status(vpc).get("vni"):
            want["vni"] = ob.status(vpc)["vni"]
        await st.write_status(obj, want)
        return None if ready else WAIT_RETRY


ALL = (DropletController, VpcController, SubnetController, EndpointController, NetworkController)


def restore(state: NetState, informers: dict[str, SharedInformer]) -> None:
    """Rebuild the topology from the statuses the operator wrote before (after a restart)."""
    topo = state.topology
    for o in informers["droplet"].list():
        s = ob.spec(o)
        topo.set_droplet(
            DropletInfo(ob.name(o), str(s.get("ip")), str(s.get("mac")), str(s.get("transitd") or "")),
            ob.name(o),
        )
    for o in informers["vpc"].list():
        s, stt = ob.spec(o), ob.status(o)
        if stt.get("phase") == ob.PROVISIONED and stt.get("vni"):
            k = ob_key(o)
            topo.set_vpc(
                k,
                VpcInfo(
                    k,
                    int(stt["vni"]),
                    str(s.get("cidr")),
                    [d for d in stt.get("dividers") or [] if d in topo.droplets],
                ),
            )
    for o in informers["subnet"].list():
        s, stt = ob.spec(o), ob.status(o)
        vkey = ob.tkey(ob.tenant(o), str(s.get("vpc")))
        if stt.get("phase") == ob.PROVISIONED and vkey in topo.vpcs:
            k = ob_key(o)
            topo.set_subnet(
                k,
                SubnetInfo(
                    k,
                    vkey,
                    topo.vpcs[vkey].vni,
                    str(s.get("cidr")),
                    str(stt.get("gateway")),
                    [b for b in stt.get("bouncers") or [] if b in topo.droplets],
                ),
            )
    for o in informers["endpoint"].list():
        s, stt = ob.spec(o), ob.status(o)
        skey = ob.tkey(ob.tenant(o), str(s.get("subnet")))
        if stt.get("phase") == ob.PROVISIONED and skey in topo.subnets and s.get("droplet") in topo.droplets:
            k = ob_key(o)
            state.uids[k] = ob.uid(o)
            topo.set_endpoint(
                k,
                EndpointInfo(
                    k,
                    skey,
                    int(stt["vni"]),
                    str(stt["ip"]),
                    str(stt["mac"]),
                    str(s["droplet"]),
                    str(s.get("veth") or ""),
                ),
            )
