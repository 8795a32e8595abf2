"""The node agent (``centaurusctl serve agent``): one process serving one or many nodes.

``main`` parses the flags and builds the nodes; ``agent`` is one node's orchestration, with
``registration`` (Node object and Lease), ``podworker`` (one worker per pod driving the
runtime), ``statuswriter`` (batched pod status writes), ``actions`` (VM Actions),
``admission`` (kubelet-style node admission), ``probes``, ``podevents`` and ``podstatus``;
``sources`` watches the pods bound to the node in every tenant partition, and ``endpoint``
serves the log/exec requests the API server proxies.
"""
