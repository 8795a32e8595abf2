"""Persisted allocators: VNIs (cluster-wide, 24 bits) and endpoint IPs (per VPC).

Each allocated value is one record in the API: a ConfigMap in the system tenant's
``kube-system`` namespace named for the value (``vni-4097``, ``ip-4097-10-0-1-5``), labelled
``network.centaurus.io/allocation=vni|ip``, whose data names its owner (``uid``, ``owner``
as ``TENANT/NAMESPACE/NAME``). Claiming a value is *creating* its record: the store's create
is a compare-and-swap on "absent", so of two operators (or two workers) racing for one value
exactly one gets it and the other sees 409 AlreadyExists and moves on. An IP record is keyed
by the VPC's VNI, so one address is never given to two endpoints of a VPC, in one subnet or
across its subnets, while two tenants' VPCs may use the same CIDR.

A record whose owner already holds it (``uid`` matches) is adopted, not refused: an operator
that crashed between creating the record and writing the Endpoint's status finds its own
record again. :meth:`Allocator.reconcile` (run on start and periodically) deletes every record
whose owner is gone or now holds another value - an owner the operator's informers show
holding its record costs nothing, any other is confirmed by a fresh GET first, so a record that another operator instance has just created for an object this one has
not seen yet is never taken away. Together: allocated == referenced. A hand-set value whose
record is held by an owner that is gone (an endpoint deleted a moment ago, its release not yet
done) is taken over the same way (:meth:`Allocator.claim_wanted`), not refused. A record that
appears for an owner whose status already names another value (two operators raced for it)
makes the owner sync again (``on_extra``), and the sync releases what the owner does not use; a
VPC keeps the VNI its status names.

The records are watched by one informer (label selector), so choosing a free candidate is a
local lookup; a candidate taken meanwhile costs one refused create.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from ctl.client import ApiError, Client
from ctl.client.informer import Informer
from ctl.network.objects import ENDPOINT, VPC, md, status, uid
from ctl.types.kinds import Kind
from ctl.types.network_validation import (
    ALLOC_LABEL,
    ALLOC_NAMESPACE,
    ALLOC_TENANT,
    MAX_VNI,
    ip_record,
    reserved,
    vni_record,
)

log = logging.getLogger("centaurus.network.allocator")
FIRST_VNI = 100  # leave the lowest VNIs to hand-set, well-known networks


class Taken(Exception):
    """A hand-set value another owner holds."""


class Allocator:
    def __init__(
        self, client: Client, cached: Callable[[Kind, str], dict[str, Any] | None] | None = None
    ) -> None:
        self.client = client
        self.cached = cached  # (kind, informer key) -> the object as the operator's informers have it
        self.on_extra: Callable[[Kind, str], None] | None = None  # an owner to sync (see _index)
        self.informer = Informer(
            client, "configmaps", namespace=ALLOC_NAMESPACE, tenant=ALLOC_TENANT, label_selector=ALLOC_LABEL
        )
        self.local: dict[str, dict[str, Any]] = {}  # records this process created (informer may lag)
        self._owned: dict[str, set[str]] = {}  # owner uid -> record names (may hold stale names)
        self.informer.add_handler(self._index)
        self._cursor: dict[str, int] = {}  # subnet cidr@vni -> next candidate (as int)
        self.claims = 0
        self.conflicts = 0

    # ---- records ----------------------------------------------------------------------------

    def _index(self, typ: str, r: dict[str, Any], old: dict[str, Any] | None) -> None:
        if typ == "DELETED":
            return
        self._note(r)
        data = r.get("data") or {}
        if typ == "ADDED" and self.cached is not None and self.on_extra is not None:
            # A record (maybe another operator's, from a race) for an owner whose status already
            # names another value: sync the owner, which releases the records it does not use.
            kind = VPC if data.get("kind") == "vni" else ENDPOINT
            owner = self.cached(kind, str(data.get("owner") or ""))
            if (
                owner is not None
                and uid(owner) == data.get("uid")
                and self._holds_other(owner, data.get("kind"), data.get("value"))
            ):
                self.on_extra(kind, str(data.get("owner")))

    def _note(self, r: dict[str, Any]) -> None:
        ouid = str((r.get("data") or {}).get("uid") or "")
        if ouid:
            self._owned.setdefault(ouid, set()).add(str(md(r).get("name") or ""))

    def record(self, rname: str) -> dict[str, Any] | None:
        r = self.informer.store.get(f"{ALLOC_TENANT}/{ALLOC_NAMESPACE}/{rname}")
        return r if r is not None else self.local.get(rname)

    def holder(self, rname: str) -> str | None:
        r = self.record(rname)
        if r is None:
            return None
        data = r.get("data") or {}
        return str(data.get("uid") or "")

    async def claim(
        self, rname: str, kind: str, owner: dict[str, Any], value: str, ask: bool = False
    ) -> bool:
        """Create the record for ``owner``; True if it is (now or already) the owner's.

        ``ask``: try the create even if the informer still shows a holder (just released)."""
        ouid = uid(owner)
        h = None if ask else self.holder(rname)
        if h is not None:
            return h == ouid
        m = md(owner)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": rname, "labels": {ALLOC_LABEL: kind}},
            "data": {
                "uid": ouid,
                "owner": f"{m.get('tenant') or ''}/{m.get('namespace') or ''}/{m.get('name') or ''}",
                "kind": kind,
                "value": value,
            },
        }
        self.claims += 1
        try:
            created = await self.client.create(body, namespace=ALLOC_NAMESPACE, tenant=ALLOC_TENANT)
        except ApiError as e:
            if e.code != 409:
                raise
            self.conflicts += 1
            try:
                got = await self.client.get("configmaps", rname, ALLOC_NAMESPACE, ALLOC_TENANT)
            except ApiError as e2:
                if e2.code == 404:  # released meanwhile: try again on the next sync
                    return False
                raise
            self.local[rname] = got
            self._note(got)
            return str((got.get("data") or {}).get("uid")) == ouid
        self.local[rname] = created
        self._note(created)
        return True

    async def release(self, rname: str, owner_uid: str | None = None) -> None:
        """Delete a record (only if ``owner_uid`` still holds it, when given)."""
        r = self.record(rname)
        if owner_uid is not None and r is not None and str((r.get("data") or {}).get("uid")) != owner_uid:
            return
        self.local.pop(rname, None)
        pre = {"uid": str(md(r).get("uid"))} if r is not None and md(r).get("uid") else None
        try:
            await self.client.delete("configmaps", rname, ALLOC_NAMESPACE, ALLOC_TENANT, preconditions=pre)
        except ApiError as e:
            if e.code not in (404, 409):
                raise

    def owned_by(self, owner_uid: str, kind: str) -> list[str]:
        """The records ``owner_uid`` holds of ``kind`` (an index lookup, not a scan of every record)."""
        names = self._owned.get(owner_uid)
        if not names:
            return []
        out = []
        for n in list(names):
            data = (self.record(n) or {}).get("data") or {}
            if data.get("uid") != owner_uid:
                names.discard(n)  # released, or taken over by another owner
            elif data.get("kind") == kind:
                out.append(n)
        if not names:
            del self._owned[owner_uid]
        return sorted(out)

    def values_of(self, owner_uid: str, kind: str) -> list[str]:
        return [
            str((self.record(n) or {}).get("data", {}).get("value")) for n in self.owned_by(owner_uid, kind)
        ]

    # ---- VNIs -------------------------------------------------------------------------------

    async def vni_for(self, vpc: dict[str, Any], wanted: int | None) -> int:
        """The VPC's VNI: the hand-set one (Taken if another VPC holds it), the one it holds, or a new one."""
        if wanted is not None:
            if await self.claim_wanted(vni_record(wanted), "vni", vpc, str(wanted)):
                return wanted
            raise Taken(f"VNI {wanted} is in use by another VPC")
        current = status(vpc).get("vni")
        if isinstance(current, int) and await self.claim(vni_record(current), "vni", vpc, str(current)):
            return current  # the one its status names (re-claimed if it was released meanwhile)
        held = self.values_of(uid(vpc), "vni")
        if held:
            return int(held[0])
        v = self._cursor.get("vni", FIRST_VNI)
        for _ in range(MAX_VNI):
            if v > MAX_VNI:
                v = FIRST_VNI
            if self.holder(vni_record(v)) is None and await self.claim(vni_record(v), "vni", vpc, str(v)):
                self._cursor["vni"] = v + 1
                return v
            v += 1
        raise Taken("no free VNI")

    # ---- IPs --------------------------------------------------------------------------------

    async def ip_for(self, ep: dict[str, Any], vni: int, cidr: str, wanted: str | None) -> str:
        """The endpoint's IP in subnet ``cidr`` of the VPC ``vni`` (see :meth:`vni_for`)."""
        if wanted:
            why = reserved(cidr, wanted)
            if why:
                raise Taken(why)
            if await self.claim_wanted(ip_record(vni, wanted), "ip", ep, wanted):
                return wanted
            raise Taken(f"IP {wanted} is in use by another endpoint of the VPC")
        prefix = f"ip-{vni}-"
        for n in self.owned_by(uid(ep), "ip"):
            if n.startswith(prefix):
                ip = n[len(prefix) :].replace("-", ".")
                if reserved(cidr, ip) is None:
                    return ip
        net = ipaddress.IPv4Network(cidr)
        lo, hi = int(net.network_address) + 2, int(net.broadcast_address) - 1  # no network/gateway/broadcast
        ck = f"{cidr}@{vni}"
        cur = self._cursor.get(ck, lo)
        for _ in range(hi - lo + 1):
            if cur > hi:
                cur = lo
            ip = str(ipaddress.IPv4Address(cur))
            cur += 1
            if self.holder(ip_record(vni, ip)) is None and await self.claim(ip_record(vni, ip), "ip", ep, ip):
                self._cursor[ck] = cur
                return ip
        raise Taken(f"subnet {cidr} is full")

    # ---- reconcile --------------------------------------------------------------------------

    async def stale(self, r: dict[str, Any]) -> bool:
        """Whether a record's owner is gone or holds another value (confirmed by a fresh GET)."""
        data = r.get("data") or {}
        kind, owner, ouid, value = (
            data.get("kind"),
            str(data.get("owner") or ""),
            data.get("uid"),
            data.get("value"),
        )
        k: Kind = VPC if kind == "vni" else ENDPOINT
        t, ns, n = (owner.split("/") + ["", "", ""])[:3]
        seen = self.cached(k, f"{t}/{ns}/{n}") if self.cached is not None and n else None
        if seen is not None and uid(seen) == ouid and not self._holds_other(seen, kind, value):
            return False  # the informers show the owner holding it: no GET needed
        try:
            o = await self.client.get(k, n, ns or None, t or None) if n else None
        except ApiError as e:
            if e.code != 404:
                raise
            o = None
        return o is None or uid(o) != ouid or self._holds_other(o, kind, value)

    @staticmethod
    def _holds_other(o: dict[str, Any], kind: Any, value: Any) -> bool:
        have = status(o).get("vni" if kind == "vni" else "ip")
        return have is not None and str(have) != str(value) and status(o).get("phase") == "Provisioned"

    async def claim_wanted(self, rname: str, kind: str, owner: dict[str, Any], value: str) -> bool:
        """:meth:`claim` a hand-set value, taking it over from a holder that is gone."""
        if await self.claim(rname, kind, owner, value):
            return True
        r = self.record(rname)
        if r is None or not await self.stale(r):
            return False
        log.info("taking over %s from %s (gone)", rname, (r.get("data") or {}).get("owner"))
        await self.release(rname, str((r.get("data") or {}).get("uid")))
        return await self.claim(rname, kind, owner, value, ask=True)

    async def reconcile(self) -> int:
        """Release every record whose owner is gone or holds another value; returns how many."""
        released = 0
        records = {md(r).get("name", ""): r for r in [*self.local.values(), *self.informer.store.values()]}
        for rname, r in records.items():
            data = r.get("data") or {}
            if await self.stale(r):
                log.info("releasing %s (owner %s gone or holds another value)", rname, data.get("owner"))
                await self.release(rname, str(data.get("uid")))
                released += 1
        return released
