"""Per-kind rules of the generic verbs, as a strategy table (Kubernetes' ``RESTStrategy``).

:class:`~ctl.apiserver.registry.Registry` implements create, update, patch and delete once
for every kind; where a kind differs, it asks the kind's :class:`Strategy` (looked up with
:func:`strategy_for`, the plain :class:`Strategy` for kinds without rules):

* :meth:`Strategy.update_subresource` - the object a subresource update produces from the
  stored one (``status`` for every kind; ``finalize`` for Namespaces);
* :meth:`Strategy.validate_update` - rules that compare the old and new object
  (a Pod's ``spec.nodeName`` is immutable once set);
* :meth:`Strategy.on_delete` - whether a delete is graceful (sets ``deletionTimestamp``
  and waits) and what it marks: a bound Pod waits for its agent for its grace period,
  a Namespace or Tenant turns ``Terminating`` until its controller has emptied it;
* :meth:`Strategy.deletable_now` - whether a deleting object without finalizers can be
  removed from the store now (a bound Pod only once its agent deleted it with grace 0,
  a Namespace only once ``spec.finalizers`` is empty).

Adding a kind with special rules is one subclass and one table entry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from ctl.types.kinds import Kind
from ctl.types.validation import Cause

Obj = dict[str, Any]


@dataclass(frozen=True)
class DeletePlan:
    """What a delete does besides removing finalizer-free objects at once."""

    graceful: bool = False  # set deletionTimestamp and wait, even without finalizers
    grace_seconds: int | None = None  # recorded as metadata.deletionGracePeriodSeconds


class Strategy:
    """The generic rules; subclasses override what their kind does differently."""

    def update_subresource(self, old: Obj, body: Obj, subresource: str) -> Obj | None:
        """The new object for an update of ``subresource`` (None: not a subresource this kind updates)."""
        if subresource == "status":
            new = copy.deepcopy(old)
            new["status"] = body.get("status", {})
            return new
        return None

    def validate_update(self, old: Obj, new: Obj) -> list[Cause]:
        return []

    def on_delete(self, obj: Obj, grace: int | None) -> DeletePlan:
        """Called on the copy about to be marked deleting; may change it (e.g. its phase)."""
        return DeletePlan()

    def deletable_now(self, obj: Obj) -> bool:
        return True


def _spec(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


class PodStrategy(Strategy):
    def validate_update(self, old: Obj, new: Obj) -> list[Cause]:
        on, nn = _spec(old).get("nodeName"), _spec(new).get("nodeName")
        if on and nn != on:
            return [Cause("spec.nodeName", "field is immutable once set")]
        return []

    def on_delete(self, obj: Obj, grace: int | None) -> DeletePlan:
        graceful = False
        if _spec(obj).get("nodeName"):
            # A bound pod is stopped by its node agent first, for its grace period.
            if grace is None:
                grace = _spec(obj).get("terminationGracePeriodSeconds", 30)
            graceful = int(grace or 0) > 0
        return DeletePlan(graceful, int(grace or 0))

    def deletable_now(self, obj: Obj) -> bool:
        # A bound pod is removed by its node agent (grace 0) once its containers stopped.
        return not _spec(obj).get("nodeName") or obj["metadata"].get("deletionGracePeriodSeconds") == 0


class TerminatingStrategy(Strategy):
    """Tenants and Namespaces: a delete marks them Terminating; their controllers empty them, then finalize."""

    def on_delete(self, obj: Obj, grace: int | None) -> DeletePlan:
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status["phase"] = "Terminating"
        return DeletePlan(graceful=True)


class NamespaceStrategy(TerminatingStrategy):
    def update_subresource(self, old: Obj, body: Obj, subresource: str) -> Obj | None:
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = _spec(body).get("finalizers") or []
            return new
        return super().update_subresource(old, body, subresource)

    def deletable_now(self, obj: Obj) -> bool:
        return not _spec(obj).get("finalizers")


DEFAULT = Strategy()
STRATEGIES: dict[str, Strategy] = {
    "Pod": PodStrategy(),
    "Namespace": NamespaceStrategy(),
    "Tenant": TerminatingStrategy(),
}


def strategy_for(kind: Kind) -> Strategy:
    return STRATEGIES.get(kind.kind, DEFAULT)
