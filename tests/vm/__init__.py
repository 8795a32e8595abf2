"""Tests of virtual-machine pods: validation, the libvirt runtime (test driver and real QEMU)."""
