"""Admission of the network kinds: collisions refused up front, from the API server's cache.

The network operator decides allocation race-free against its persisted records
(:mod:`ctl.network.allocator`), but a user who sets a VNI or an IP by hand, or writes a subnet
outside its VPC, should hear about it at once - a clear status code on the write - rather than
find the object ``Failed`` later. This admission step answers from the watch cache only (the
allocation records, the VPC and the sibling subnets are all in memory), so it costs no store
round trip, and it returns at once for every kind but VPC, Subnet and Endpoint (and for their
writes that do not change the fields it checks: the operator's status updates, a scaling):

* VPC ``spec.vni`` already allocated to another live VPC (its record), or asked for by hand by
  another VPC that is not Failed: **409 AlreadyExists**, cause ``spec.vni``; the other VPC is
  not named (it may be another tenant's).
* Subnet ``spec.cidr`` not inside its VPC's CIDR (when the VPC exists), or overlapping another
  subnet of that VPC that is not Failed: **422 Invalid**, cause ``spec.cidr``.
* Endpoint ``spec.ip`` that its subnet reserves (outside it, its network, gateway or broadcast
  address): **422 Invalid**, cause ``spec.ip``; already allocated to another live endpoint of
  the VPC (the record ``ip-VNI-A-B-C-D``, once the subnet has its VNI): **409 AlreadyExists**.

A record whose holder is gone (deleted, awaiting the operator's reconcile) does not refuse
anything. What the cache cannot see yet - two creates racing, a subnet created before its VPC,
an endpoint before its subnet is provisioned - passes here and is caught by the operator, the
second line of defence: the object goes ``Failed`` with a reason. The shared rules (record
names, reserved addresses) are in :mod:`ctl.types.network_validation`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ctl.apiserver import status as st
from ctl.apiserver.watchcache import WatchCache
from ctl.types import kinds
from ctl.types.kinds import Kind
from ctl.types.network_validation import (
    ALLOC_NAMESPACE,
    ALLOC_TENANT,
    ip_record,
    reserved,
    vni_record,
)
from ctl.types.schema import Cause

GROUP = "mizar.centaurus.io"
Obj = dict[str, Any]


def _kind(api_version: str, plural: str) -> Kind:
    k = kinds.by_resource(api_version, plural)
    assert k is not None, plural
    return k


def _d(o: Any, field: str) -> Obj:
    v = o.get(field) if isinstance(o, dict) else None
    return v if isinstance(v, dict) else {}


def _changed(obj: Obj, old: Obj | None, *fields: str) -> bool:
    if old is None:
        return True
    new_spec, old_spec = _d(obj, "spec"), _d(old, "spec")
    return any(new_spec.get(f) != old_spec.get(f) for f in fields)


def _taken(kind: Kind, obj: Obj, field: str, message: str) -> st.APIError:
    name = str(_d(obj, "metadata").get("name") or "")
    return st.APIError(
        409,
        f'{kind.plural}.{GROUP} "{name}" is refused: {field}: {message}',
        "AlreadyExists",
        {
            "name": name,
            "group": GROUP,
            "kind": kind.plural,
            "causes": [{"reason": "FieldValueDuplicate", "field": field, "message": message}],
        },
    )


class NetworkAdmission:
    def __init__(self, cache: WatchCache) -> None:
        self.cache = cache
        mizar = f"{GROUP}/v1"
        self.vpcs = _kind(mizar, "vpcs")
        self.subnets = _kind(mizar, "subnets")
        self.endpoints = _kind(mizar, "endpoints")
        self.configmaps = _kind("v1", "configmaps")

    async def __call__(self, verb: str, kind: Kind, obj: Obj, old: Obj | None) -> None:
        if kind.group != GROUP or verb == "delete":
            return
        if kind.kind == "VPC" and _d(obj, "spec").get("vni") is not None and _changed(obj, old, "vni"):
            self._vpc(obj)
        elif kind.kind == "Subnet" and _changed(obj, old, "cidr", "vpc"):
            self._subnet(obj)
        elif kind.kind == "Endpoint" and _d(obj, "spec").get("ip") and _changed(obj, old, "ip", "subnet"):
            self._endpoint(obj)

    # ---- records ------------------------------------------------------------------------------

    def _holder(self, record: str, owner_kind: Kind) -> tuple[str, str] | None:
        """(uid, NAMESPACE/NAME) of a live holder of an allocation record; None if free."""
        r = self.cache.get(self.configmaps, self.configmaps.key(ALLOC_TENANT, ALLOC_NAMESPACE, record))
        if r is None:
            return None
        data = _d(r, "data")
        t, ns, n = (str(data.get("owner") or "").split("/") + ["", "", ""])[:3]
        holder = self.cache.get(owner_kind, owner_kind.key(t, ns, n)) if n else None
        huid = _d(holder, "metadata").get("uid")
        return (str(huid), f"{ns}/{n}" if ns else n) if huid and huid == data.get("uid") else None

    # ---- kinds --------------------------------------------------------------------------------

    def _vpc(self, obj: Obj) -> None:
        md, vni = _d(obj, "metadata"), _d(obj, "spec").get("vni")
        if not isinstance(vni, int):
            return
        msg = f"VNI {vni} is already allocated to another VPC"
        holder = self._holder(vni_record(vni), self.vpcs)
        if holder is not None and holder[0] != md.get("uid"):
            raise _taken(self.vpcs, obj, "spec.vni", msg)
        for o in self.cache.list(self.vpcs, self.vpcs.prefix()):
            omd = _d(o, "metadata")
            if omd.get("uid") == md.get("uid") or _d(o, "status").get("phase") == "Failed":
                continue
            if _d(o, "spec").get("vni") == vni or _d(o, "status").get("vni") == vni:
                raise _taken(self.vpcs, obj, "spec.vni", msg)

    def _subnet(self, obj: Obj) -> None:
        md, spec = _d(obj, "metadata"), _d(obj, "spec")
        tenant, name, vname = str(md.get("tenant") or ""), md.get("name"), spec.get("vpc")
        try:
            net = ipaddress.IPv4Network(str(spec.get("cidr")))
        except ValueError:
            return  # validation already refused it
        causes: list[Cause] = []
        vpc = self.cache.get(self.vpcs, self.vpcs.key(tenant, "", str(vname)))
        vcidr = _d(vpc, "spec").get("cidr")
        try:
            if vcidr and not net.subnet_of(ipaddress.IPv4Network(str(vcidr))):
                causes.append(
                    Cause("spec.cidr", f"Invalid value: {str(net)!r}: not inside VPC {vname}'s {vcidr}")
                )
        except ValueError:
            pass
        for o in self.cache.list(self.subnets, self.subnets.prefix(tenant)):
            ospec = _d(o, "spec")
            if _d(o, "metadata").get("name") == name or ospec.get("vpc") != vname:
                continue
            if _d(o, "status").get("phase") == "Failed":
                continue
            try:
                other = ipaddress.IPv4Network(str(ospec.get("cidr")))
            except ValueError:
                continue
            if other.overlaps(net):
                causes.append(
                    Cause(
                        "spec.cidr",
                        f"Invalid value: {str(net)!r}: overlaps subnet {_d(o, 'metadata').get('name')} "
                        f"({other}) of VPC {vname}",
                    )
                )
                break
        if causes:
            raise st.invalid("Subnet", str(name or ""), causes, GROUP)

    def _endpoint(self, obj: Obj) -> None:
        md, spec = _d(obj, "metadata"), _d(obj, "spec")
        ip = str(spec.get("ip"))
        tenant = str(md.get("tenant") or "")
        sub = self.cache.get(self.subnets, self.subnets.key(tenant, "", str(spec.get("subnet"))))
        if sub is None:
            return  # the operator waits for the subnet, then decides
        try:
            why = reserved(str(_d(sub, "spec").get("cidr")), ip)
        except ValueError:
            return
        if why:
            raise st.invalid(
                "Endpoint", str(md.get("name") or ""), [Cause("spec.ip", f"Invalid value: {why}")], GROUP
            )
        vni = _d(sub, "status").get("vni")
        if isinstance(vni, int):
            holder = self._holder(ip_record(vni, ip), self.endpoints)
            if holder is not None and holder[0] != md.get("uid"):
                raise _taken(
                    self.endpoints, obj, "spec.ip", f"IP {ip} is already allocated to endpoint {holder[1]}"
                )


def install(server: Any) -> None:
    """Add the network admission step to an :class:`ctl.apiserver.app.APIServer`'s registry."""
    server.registry.admission.append(NetworkAdmission(server.cache))
