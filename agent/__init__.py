"""Centaurus host side.

The node agent and its runtimes (runc containers, libvirt VMs, hollow nodes), CNI
plumbing and the transit daemon that loads the XDP programs from ``bpf/``. The agent
may import ``ctl``'s client, types, util, images and the transit RPC client
(``.importlinter`` checks it); the reverse never happens.
"""
