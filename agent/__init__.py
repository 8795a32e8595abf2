"""Centaurus host side.

The node agent and its runtimes (runc containers, libvirt VMs, hollow nodes), CNI
plumbing and the transit daemon that loads the XDP programs from ``bpf/``. The agent
may import ``ctl``'s client and types; the reverse never happens.
"""
