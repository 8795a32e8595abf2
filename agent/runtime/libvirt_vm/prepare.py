"""Preparing a VM pod before its domain is defined: the image and the seed the guest boots with.

:func:`prepare` resolves ``spec.virtualMachine.image`` in the node's VM image store
(:mod:`ctl.images.vm_image`) and writes what the guest reads at boot into the pod's private
directory (0700): for a kernel image, the image's initramfs with a seed archive appended (user
data, the public key - given, or looked up by ``keyPairName`` through the runtime's key resolver -
the cloud-init script and instance metadata); for a disk image, a NoCloud config drive and a qcow2
copy-on-write overlay on the image's disk. Under libvirt's test driver, where no guest runs, it also
writes what the tiny image would print (``test-boot.txt``) and the first console line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.runtime.base import RuntimeError_
from agent.runtime.libvirt_vm.state import PodState
from ctl.images.vm_image import (
    VMImage,
    VMImageError,
    build_config_drive_iso,
    initrd_with_seed,
    resolve_vm_image,
    seed_cpio,
)
from ctl.types.vm_validation import decode_user_data

KeyResolver = Callable[[str, str, str], Awaitable[str | None]]  # (tenant, namespace, keyPairName) -> key


async def prepare(
    pod: dict[str, Any],
    st: PodState,
    pod_dir: Path,
    *,
    data_dir: Path,
    key_resolver: KeyResolver | None,
    is_test: bool,
) -> VMImage:
    """Resolve the image and write the pod's seed (initrd or config drive)."""
    md, vm = pod["metadata"], pod["spec"]["virtualMachine"]
    try:
        image = resolve_vm_image(data_dir, vm["image"])
    except VMImageError as e:
        raise RuntimeError_("ErrImagePull", str(e)) from e
    user_data = decode_user_data(vm["userData"]) if vm.get("userData") else b""
    public_key = vm.get("publicKey") or ""
    if not public_key and vm.get("keyPairName") and key_resolver is not None:
        public_key = (
            await key_resolver(md.get("tenant", "system"), md.get("namespace", "default"), vm["keyPairName"])
            or ""
        )
    script = vm.get("cloudInitUserDataScript") or ""
    meta = {
        "instance-id": md["uid"],
        "hostname": vm["name"],
        "pod": md.get("name", ""),
        "namespace": md.get("namespace", "default"),
        "tenant": md.get("tenant", "system"),
        "keyPairName": vm.get("keyPairName", ""),
    }
    pod_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(pod_dir, 0o700)
    if image.kind == "kernel":
        assert image.initrd is not None
        data = initrd_with_seed(image.initrd.read_bytes(), seed_cpio(user_data, public_key, script, meta))
        (pod_dir / "initrd.img").write_bytes(data)
    else:
        await _disk_seed(
            image, pod_dir, user_data or (script.encode() if script else b""), public_key, md, vm
        )
    if is_test:
        _test_boot_text(pod_dir, st, user_data, public_key, script)
    return image


async def _disk_seed(
    image: VMImage, pod_dir: Path, ud: bytes, public_key: str, md: dict[str, Any], vm: dict[str, Any]
) -> None:
    assert image.disk is not None
    await asyncio.to_thread(
        build_config_drive_iso, pod_dir / "config.iso", ud, public_key, md["uid"], vm["name"]
    )
    overlay = pod_dir / "disk.qcow2"
    if overlay.exists():
        return
    r = await asyncio.to_thread(
        subprocess.run,
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            image.disk_format,
            "-b",
            str(image.disk),
            str(overlay),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise RuntimeError_("CreateDiskFailed", f"qemu-img create failed: {r.stderr.strip()}")


def _test_boot_text(pod_dir: Path, st: PodState, user_data: bytes, public_key: str, script: str) -> None:
    lines = ["=== centaurus tiny VM: booting ==="]
    if public_key:
        lines += ["=== public-key begin ===", public_key, "=== public-key end ==="]
    if user_data:
        lines += ["=== user-data begin ===", user_data.decode(errors="replace"), "=== user-data end ==="]
    if script:
        lines += ["=== script begin ===", script, "=== script end ==="]
    (pod_dir / "test-boot.txt").write_text("\n".join([*lines, "=== centaurus tiny VM: ready ==="]) + "\n")
    with open(pod_dir / "console.log", "a") as f:
        f.write(
            f"[test:///default] domain {st['domain']} defined; the test driver runs no guest, "
            "this log records lifecycle events\n"
        )
