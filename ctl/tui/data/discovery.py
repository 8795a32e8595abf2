"""The kinds the API server serves, read from its discovery documents.

``/api/v1`` and ``/apis`` -> ``/apis/{group}/{version}`` list every resource with its kind,
short names, verbs and subresources (``pods/log``, ``deployments/scale`` ...). A resource
the client library also declares (:mod:`ctl.types.kinds`) keeps that declaration, which knows
the Arktos scope (cluster, tenant or namespace); one it does not know - a kind added to the
server after this client was built - becomes a new :class:`~ctl.types.kinds.Kind` from the
discovery entry alone (namespaced, or tenant-scoped: discovery reports tenant-scoped kinds
as not namespaced, the way a stock Kubernetes client sees them inside its tenant). So new
kinds appear in the TUI without code.

:class:`Catalog` is the result: the kinds in a stable order, the subresources of each, and
:meth:`Catalog.resolve` for the words a user types after ``:`` (plural, singular, kind, short
name, ``plural.group``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ctl.client import ApiError, Client
from ctl.types import kinds
from ctl.types.kinds import Kind


@dataclass
class Catalog:
    """What discovery found: kinds in display order, and each kind's subresources."""

    kinds: list[Kind] = field(default_factory=list)
    subresources: dict[Kind, frozenset[str]] = field(default_factory=dict)

    def add(self, kind: Kind, subs: frozenset[str]) -> None:
        if kind not in self.subresources:
            self.kinds.append(kind)
        self.subresources[kind] = subs

    def has(self, kind: Kind, sub: str) -> bool:
        return sub in self.subresources.get(kind, frozenset())

    def resolve(self, word: str) -> Kind | None:
        """The kind a user means by ``word`` (case-insensitive), among the kinds served."""
        w = word.strip().lower()
        if not w:
            return None
        for k in self.kinds:
            names = {k.plural, k.singular, k.kind.lower(), *k.short}
            if w in names or (k.group and w in {f"{n}.{k.group}" for n in names}):
                return k
        return None

    def names(self) -> list[str]:
        """Every word :meth:`resolve` accepts, for completion."""
        out: list[str] = []
        for k in self.kinds:
            out += [k.plural, *k.short]
        return out


def kind_from_entry(api_version: str, r: dict[str, Any]) -> Kind | None:
    """The :class:`Kind` of one discovery resource entry (None for a subresource or a bad entry)."""
    name = r.get("name")
    if not isinstance(name, str) or "/" in name or not isinstance(r.get("kind"), str):
        return None
    known = kinds.by_resource(api_version, name)
    if known is not None:
        return known
    group, _, version = api_version.rpartition("/")
    verbs = r.get("verbs")
    short = r.get("shortNames")
    return Kind(
        kind=r["kind"],
        group=group,
        version=version,
        plural=name,
        singular=str(r.get("singularName") or r["kind"].lower()),
        scope=kinds.NAMESPACE if r.get("namespaced") else kinds.TENANT,
        short=tuple(s for s in short if isinstance(s, str)) if isinstance(short, list) else (),
        verbs=tuple(v for v in verbs if isinstance(v, str)) if isinstance(verbs, list) else (),
    )


def _add_list(cat: Catalog, api_version: str, doc: Any) -> None:
    resources = doc.get("resources") if isinstance(doc, dict) else None
    if not isinstance(resources, list):
        return
    subs: dict[str, set[str]] = {}
    for r in resources:
        name = r.get("name") if isinstance(r, dict) else None
        if isinstance(name, str) and "/" in name:
            base, _, sub = name.partition("/")
            subs.setdefault(base, set()).add(sub)
    for r in resources:
        k = kind_from_entry(api_version, r) if isinstance(r, dict) else None
        if k is not None and "list" in k.verbs:
            cat.add(k, frozenset(subs.get(k.plural, ())))


async def discover(client: Client) -> Catalog:
    """Read the server's discovery documents into a :class:`Catalog`.

    A group/version whose document cannot be read (forbidden, gone between the two requests)
    is left out; the core group must answer, or the error propagates.
    """
    cat = Catalog()
    _add_list(cat, "v1", await client.request("GET", "/api/v1"))
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or [] if isinstance(groups, dict) else []:
        pv = (g.get("preferredVersion") or {}).get("groupVersion") if isinstance(g, dict) else None
        if not isinstance(pv, str):
            continue
        try:
            _add_list(cat, pv, await client.request("GET", f"/apis/{pv}"))
        except ApiError:
            continue
    return cat
