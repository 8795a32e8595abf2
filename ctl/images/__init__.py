"""Local image stores for the node agent and the CLI.

``store`` keeps OCI container images on disk as an OCI image layout and unpacks their
root filesystems on demand (``layers`` applies layer tarballs safely, ``sources`` reads
OCI layouts and ``docker save`` tarballs, ``reference`` normalises image names);
``busybox`` builds the default ``busybox:latest`` image from Debian's busybox-static; and
``vm_image`` keeps the kernels, initramfs and disks that VM pods boot from.
"""
