"""The scheduler: assigns unscheduled pods to nodes (``centaurusctl serve scheduler``).

It follows kube-scheduler's shape in small modules:

* :mod:`~ctl.scheduler.podinfo` reads what scheduling needs from a pod, once;
* :mod:`~ctl.scheduler.cache` keeps nodes in numpy arrays (one slot per node) with the
  requests of bound and *assumed* pods, so filters and scores run vectorised over nodes;
* :mod:`~ctl.scheduler.filters` decides which nodes fit (resources, nodeSelector, node
  affinity, taints/tolerations, unschedulable/NotReady) and explains why none does;
* :mod:`~ctl.scheduler.scores` ranks the feasible nodes (least allocated, balanced
  allocation, spreading one owner's replicas, preferred affinity, PreferNoSchedule taints);
* :mod:`~ctl.scheduler.algorithm` samples nodes the way percentageOfNodesToScore does and
  picks the best;
* :mod:`~ctl.scheduler.queue` holds the active, back-off and unschedulable queues;
* FailedScheduling / Scheduled Events go through :mod:`ctl.client.events`;
* :mod:`~ctl.scheduler.scheduler` wires informers, the scheduling loop and parallel binding;
* :mod:`~ctl.scheduler.main` is the process entry (``run(argv)``).
"""
