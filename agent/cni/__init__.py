"""CNI-style pod network plumbing for the container runtime.

Each pod gets a named network namespace (``ip netns``), a veth pair whose pod end is ``eth0`` and whose
host end is enslaved to a node-local bridge (``cbr0``), and an address from the node's pod CIDR handed
out by a persisted host-local allocator. Containers of the pod join the namespace by path, so they share
``localhost``; the host reaches the pod at its podIP through the bridge. See :mod:`agent.cni.bridge`.
"""
