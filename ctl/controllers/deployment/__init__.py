"""Deployment controller: roll a Deployment's pod template out through ReplicaSets.

Split as Kubernetes splits it: :mod:`.controller` (event handlers and the sync that picks
a path), :mod:`.sync` (ReplicaSet bookkeeping, scaling, cleanup, status), :mod:`.rolling`
and :mod:`.recreate` (the two strategies), :mod:`.progress` (conditions and the progress
deadline) and :mod:`.util` (pure helpers: hashes, fenceposts, revisions).

Each template gets its own ReplicaSet named ``DEPLOYMENT-HASH``, where HASH (also the
``pod-template-hash`` label added to the ReplicaSet's selector, labels and template) is
a stable hash of the pod template plus ``status.collisionCount``. The ReplicaSet whose
template equals the Deployment's (ignoring that label) is the *new* one; all others are
*old*. Revisions are kept in the ``deployment.kubernetes.io/revision`` annotation: the
new ReplicaSet always carries the highest one, so ``rollout undo`` (copying an old
ReplicaSet's template back) just makes that ReplicaSet new again with a fresh revision.

Strategies, as in Kubernetes:

* ``RollingUpdate``: scale the new ReplicaSet up while the total stays within
  ``replicas + maxSurge`` (percentages round up) and scale old ones down while the
  available pods stay at least ``replicas - maxUnavailable`` (percentages round down).
  Two guards make this hold even while ReplicaSet statuses lag: a ReplicaSet counts as
  ``max(spec.replicas, status.replicas)`` pods when surging, and as
  ``min(spec.replicas, status.availableReplicas)`` available pods when scaling down.
* ``Recreate``: scale every old ReplicaSet to zero, wait until none of their pods is
  left, then scale the new one up.

Paused Deployments only scale (proportionally across active ReplicaSets) and clean up.
Old ReplicaSets with no pods beyond ``revisionHistoryLimit`` are deleted once a rollout
completes. Status carries replicas, updatedReplicas, readyReplicas, availableReplicas,
unavailableReplicas, observedGeneration and the Available/Progressing conditions
(including ProgressDeadlineExceeded after ``progressDeadlineSeconds`` without progress).
"""

from ctl.controllers.deployment.controller import DeploymentController
from ctl.controllers.deployment.util import (
    HASH_LABEL,
    REVISION,
    equal_ignore_hash,
    fenceposts,
    int_or_percent,
    template_hash,
)

__all__ = [
    "HASH_LABEL",
    "REVISION",
    "DeploymentController",
    "equal_ignore_hash",
    "fenceposts",
    "int_or_percent",
    "template_hash",
]
