"""Which droplets may carry bouncers and dividers: a droplet whose Node is NotReady for too long may not.

A droplet is its host's substrate; the host's health is its Node's ``Ready`` condition (written
by the node agent, turned ``Unknown`` by the node lifecycle controller when the agent stops
renewing its lease). A droplet's Node is the one named in ``spec.node``, or else the Node of
the droplet's own name (the node agent registers its Droplet under its node name); a droplet
without a Node (a transit host that runs no agent, the hollow daemons of the tests) is always
healthy.

:class:`NodeHealth` remembers, by the operator's own monotonic clock (so clock skew between
hosts does not matter, as in the node lifecycle controller), since when it has seen each Node
not Ready. Once that is longer than the grace period (``--node-grace-period``) the droplet is
*excluded*: placement (:func:`ctl.network.placement.place`) no longer counts it as live, so its
bouncers and dividers move to healthy droplets, and only the droplets the move concerns are
re-programmed. Its endpoints stay where they are (the pods are still there until evicted),
and the operator does not wait for its transit daemon. When the Node is Ready again the droplet
is placeable again; nothing moves back (placement keeps what is fine).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ctl.network import objects as ob

Obj = dict[str, Any]


def node_name(droplet: Obj) -> str:
    """The Node whose health is the droplet's."""
    return str(ob.spec(droplet).get("node") or ob.name(droplet))


def ready(node: Obj) -> bool:
    for c in ob.status(node).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


@dataclass
class Verdict:
    excluded: bool
    recheck: float | None  # seconds until the grace period ends (None: nothing to wait for)
    message: str


class NodeHealth:
    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.since: dict[str, float] = {}  # node name -> monotonic time first seen not Ready

    def verdict(self, droplet: Obj, node: Obj | None, now: float | None = None) -> Verdict:
        name = node_name(droplet)
        if node is None or ready(node):
            self.since.pop(name, None)
            return Verdict(False, None, "")
        now = time.monotonic() if now is None else now
        since = self.since.setdefault(name, now)
        left = since + self.grace - now
        if left > 0:
            return Verdict(False, left + 0.05, f"node {name} not Ready for {now - since:.0f}s")
        return Verdict(
            True,
            None,
            f"node {name} not Ready for {now - since:.0f}s (grace {self.grace:g}s): "
            "no bouncers or dividers placed here",
        )
