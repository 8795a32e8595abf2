"""The network view's model: VPC -> subnets -> endpoints, with the bouncers, dividers and hosts.

Built from the ``mizar.centaurus.io`` objects as the network operator leaves them: a VPC's
dividers are the Divider objects of that VPC (or, before they exist, the droplets its
``status.dividers`` names), a subnet's bouncers likewise from Bouncer objects or
``status.bouncers``; an endpoint shows its address, the host (droplet) it lives on and its pod.
Objects are matched by name within one tenant, as the operator matches them; a subnet whose
VPC does not exist is shown under ``(no VPC)`` rather than hidden.

:func:`topology` is a pure function of the current objects, so the screen rebuilds the tree
from its feeds' stores on change, and tests check it without a terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ctl.tui.data.rows import mapping

KINDS = ("vpcs", "subnets", "endpoints", "bouncers", "dividers", "droplets")


@dataclass
class Node:
    label: str
    children: list[Node] = field(default_factory=list)


def _md(o: dict[str, Any], f: str) -> str:
    md = mapping(o, "metadata")
    v = md.get(f)
    return v if isinstance(v, str) else ""


def _g(o: dict[str, Any], section: str, f: str) -> Any:
    s = o.get(section)
    return s.get(f) if isinstance(s, dict) else None


def _either(o: dict[str, Any], f: str) -> Any:
    v = _g(o, "status", f)
    return v if v not in (None, "", []) else _g(o, "spec", f)


def _phase(o: dict[str, Any]) -> str:
    p = _g(o, "status", "phase") or "Init"
    r = _g(o, "status", "reason")
    return f"{p}({r})" if p == "Failed" and r else str(p)


def _placed(objs: Iterable[dict[str, Any]], owner_field: str, owner: str, tenant: str) -> list[str]:
    return sorted(
        f"{_g(o, 'spec', 'droplet') or '?'} {_g(o, 'spec', 'ip') or ''}".strip()
        for o in objs
        if _md(o, "tenant") == tenant and _g(o, "spec", owner_field) == owner
    )


def topology(objs: dict[str, list[dict[str, Any]]]) -> list[Node]:
    """The forest of VPCs (keys of ``objs`` are :data:`KINDS`)."""
    vpcs, subnets, eps = objs.get("vpcs", []), objs.get("subnets", []), objs.get("endpoints", [])
    droplets = {_md(d, "name"): d for d in objs.get("droplets", [])}
    roots: list[Node] = []
    seen_subnets: set[tuple[str, str]] = set()

    def subnet_node(sn: dict[str, Any], tenant: str) -> Node:
        name = _md(sn, "name")
        seen_subnets.add((tenant, name))
        bouncers = _placed(objs.get("bouncers", []), "subnet", name, tenant) or [
            str(b) for b in _g(sn, "status", "bouncers") or []
        ]
        node = Node(f"subnet {name}  {_g(sn, 'spec', 'cidr') or ''}  [{_phase(sn)}]")
        node.children.append(Node("bouncers: " + (", ".join(bouncers) or "<none>")))
        for ep in sorted(eps, key=lambda e: _md(e, "name")):
            if _md(ep, "tenant") != tenant or _g(ep, "spec", "subnet") != name:
                continue
            drop = str(_g(ep, "spec", "droplet") or "")
            host = _g(ep, "spec", "host") or _g(droplets.get(drop, {}), "spec", "ip") or "?"
            pod = _g(ep, "spec", "pod")
            node.children.append(
                Node(
                    f"endpoint {_md(ep, 'namespace')}/{_md(ep, 'name')}  {_either(ep, 'ip') or '<pending>'}"
                    f"  host {drop or '?'} ({host})" + (f"  pod {pod}" if pod else "") + f"  [{_phase(ep)}]"
                )
            )
        return node

    for vpc in sorted(vpcs, key=lambda v: (_md(v, "tenant"), _md(v, "name"))):
        tenant, name = _md(vpc, "tenant"), _md(vpc, "name")
        dividers = _placed(objs.get("dividers", []), "vpc", name, tenant) or [
            str(d) for d in _g(vpc, "status", "dividers") or []
        ]
        vni = _either(vpc, "vni")
        root = Node(
            f"vpc {tenant + '/' if tenant else ''}{name}  {_g(vpc, 'spec', 'cidr') or ''}"
            f"  vni {vni if vni is not None else '?'}  [{_phase(vpc)}]"
        )
        root.children.append(Node("dividers: " + (", ".join(dividers) or "<none>")))
        for sn in sorted(subnets, key=lambda s: _md(s, "name")):
            if _md(sn, "tenant") == tenant and _g(sn, "spec", "vpc") == name:
                root.children.append(subnet_node(sn, tenant))
        roots.append(root)
    orphans = [s for s in subnets if (_md(s, "tenant"), _md(s, "name")) not in seen_subnets]
    if orphans:
        roots.append(Node("(no VPC)", [subnet_node(s, _md(s, "tenant")) for s in orphans]))
    return roots
