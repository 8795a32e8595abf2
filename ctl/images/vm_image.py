"""Virtual machine images in the agent's image store, and the tiny bootable image Centaurus ships.

A VM pod names its image in ``spec.virtualMachine.image`` (``name[:tag]``, tag ``latest`` by default).
VM images live beside the container images, under ``DATA_DIR/images/vm/<name>/<tag>/``, in one of two
shapes, told apart by ``meta.json``:

* ``kind: kernel`` -- ``vmlinuz`` + ``initrd.img`` (booted directly by QEMU, no disk, no bootloader);
* ``kind: disk`` -- ``disk.qcow2`` (or ``disk.img``), booted from its own bootloader; the runtime gives
  every pod a copy-on-write overlay and a NoCloud config drive (:func:`build_config_drive_iso`).

:func:`build_default_vm_images` builds **cirros-tiny:latest**, a kernel+initramfs image made on this host
from Debian's cloud kernel (``/boot/vmlinuz-*-cloud-amd64``) and ``busybox-static``. Its ``/init`` mounts
proc/sys/dev, prints a boot banner on the serial console, prints the user data and the public key it was
given (between ``=== ... begin/end ===`` markers), runs the user data if it is a shell script (``#!``)
and the pod's ``cloudInitUserDataScript``, then idles. ``acpid`` (with the kernel's ``button`` and
``evdev`` modules, copied from ``/lib/modules/<kernel version>/``) turns an ACPI power-button press into a
power-off, so libvirt's graceful shutdown and reboot work; QEMU TCG boots it in a few seconds.

How the guest gets its data: the kernel command line is limited to 2048 bytes on x86, far too small for
64 KiB of user data, and a config-drive ISO would need the ATA/SCSI/ISO9660 modules in the initramfs.
Instead the runtime appends a second, uncompressed cpio archive (:func:`seed_cpio`) to the image's
initramfs: the kernel unpacks concatenated archives in order, so ``/centaurus/seed/{user-data,
public-key,meta-data,script}`` simply exist when ``/init`` runs. No driver, no size limit worth noting.

Nothing here talks to libvirt: ``ctl`` owns the store layout and the builders, ``agent.runtime.libvirt_vm``
boots what is stored.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctl.types.meta import now_rfc3339

DEFAULT_VM_IMAGE = "cirros-tiny:latest"
BUILDER_VERSION = "3"  # bump when the tiny image's contents change, so build_default_vm_images rebuilds
SEED_DIR = "centaurus/seed"  # where the per-pod seed archive puts the guest's data (no leading slash)
BOOT_BANNER = "=== centaurus tiny VM: booting ==="
READY_BANNER = "=== centaurus tiny VM: ready ==="

_REF_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,126}[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$")


class VMImageError(Exception):
    """A VM image could not be built, imported or found (message is one clear line)."""


class VMImageNotFound(VMImageError, LookupError):
    pass


@dataclass
class VMImage:
    """One stored VM image."""

    name: str
    tag: str
    kind: str  # "kernel" | "disk"
    path: Path  # the image's directory
    kernel: Path | None = None
    initrd: Path | None = None
    disk: Path | None = None
    disk_format: str = "qcow2"
    cmdline: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"


def vm_images_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "images" / "vm"


def parse_vm_image_ref(ref: str) -> tuple[str, str]:
    """``"name[:tag]"`` -> ``(name, tag)``; raises VMImageError on a malformed reference."""
    if not isinstance(ref, str) or not _REF_RE.match(ref) or ".." in ref:
        raise VMImageError(f"invalid VM image reference {ref!r}: expected name[:tag] (lowercase name)")
    name, _, tag = ref.partition(":")
    return name, tag or "latest"


def _load(path: Path) -> VMImage | None:
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    kind = meta.get("kind")
    img = VMImage(
        name=meta.get("name", path.parent.name),
        tag=meta.get("tag", path.name),
        kind=kind,
        path=path,
        cmdline=meta.get("cmdline", ""),
        meta=meta,
    )
    if kind == "kernel":
        img.kernel, img.initrd = path / "vmlinuz", path / "initrd.img"
        if not (img.kernel.is_file() and img.initrd.is_file()):
            return None
    elif kind == "disk":
        img.disk = path / meta.get("disk", "disk.qcow2")
        img.disk_format = meta.get("diskFormat", "qcow2")
        if not img.disk.is_file():
            return None
    else:
        return None
    return img


def list_vm_images(data_dir: Path) -> list[VMImage]:
    """Every complete VM image in the store, sorted by reference."""
    root = vm_images_dir(data_dir)
    out = []
    for meta in sorted(root.glob("*/*/meta.json")):
        img = _load(meta.parent)
        if img is not None:
            out.append(img)
    return out


def resolve_vm_image(data_dir: Path, ref: str) -> VMImage:
    """The stored image for ``ref``; VMImageNotFound (a LookupError) if absent."""
    name, tag = parse_vm_image_ref(ref)
    img = _load(vm_images_dir(data_dir) / name / tag)
    if img is None:
        raise VMImageNotFound(f"VM image {name}:{tag} not found in {vm_images_dir(data_dir)}")
    return img


def remove_vm_image(data_dir: Path, ref: str) -> bool:
    name, tag = parse_vm_image_ref(ref)
    d = vm_images_dir(data_dir) / name / tag
    if not d.exists():
        return False
    shutil.rmtree(d)
    return True


# --------------------------------------------------------------------------- cpio (newc) writer


class CpioWriter:
    """A minimal ``newc`` cpio archive writer (the format the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self._buf = io.BytesIO()
        self._ino = 1
        self._dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}" for v in (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(nameb), 0)
        )
        self._ino += 1
        self._buf.write(hdr.encode() + nameb)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def mkdir(self, name: str, mode: int = 0o755) -> None:
        name = name.strip("/")
        parts = name.split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self._dirs:
                self._dirs.add(d)
                self._entry(d, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        if "/" in name:
            self.mkdir(name.rsplit("/", 1)[0])
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0, nlink=1)
        self._buf.write(b"\0" * (-self._buf.tell() % 512))
        return self._buf.getvalue()


def seed_cpio(
    user_data: bytes = b"",
    public_key: str = "",
    script: str = "",
    meta_data: dict[str, Any] | None = None,
) -> bytes:
    """The per-pod archive appended to a kernel image's initramfs (see the module docstring)."""
    w = CpioWriter()
    w.mkdir(SEED_DIR)
    w.file(f"{SEED_DIR}/user-data", user_data, 0o600)
    w.file(f"{SEED_DIR}/public-key", public_key.encode(), 0o644)
    w.file(f"{SEED_DIR}/script", script.encode(), 0o700)
    w.file(f"{SEED_DIR}/meta-data", json.dumps(meta_data or {}, sort_keys=True).encode(), 0o644)
    return w.finish()


def initrd_with_seed(base_initrd: bytes, seed: bytes) -> bytes:
    """Append a seed archive to an initramfs; zero padding keeps it 4-byte aligned, as the kernel requires."""
    return base_initrd + b"\0" * (-len(base_initrd) % 4) + seed


def build_config_drive_iso(
    path: Path,
    user_data: bytes,
    public_key: str = "",
    instance_id: str = "",
    hostname: str = "",
) -> Path:
    """A NoCloud (``cidata``) config drive for disk images whose cloud-init reads one (genisoimage)."""
    with tempfile.TemporaryDirectory() as td:
        t = Path(td)
        (t / "user-data").write_bytes(user_data)
        md = [
            f"instance-id: {instance_id or 'iid-centaurus'}",
            f"local-hostname: {hostname or 'centaurus-vm'}",
        ]
        if public_key:
            md += ["public-keys:", f"  - {json.dumps(public_key)}"]
        (t / "meta-data").write_text("\n".join(md) + "\n")
        tmp = Path(str(path) + ".tmp")
        try:
            subprocess.run(
                [
                    "genisoimage",
                    "-quiet",
                    "-output",
                    str(tmp),
                    "-volid",
                    "cidata",
                    "-joliet",
                    "-rock",
                    str(t / "user-data"),
                    str(t / "meta-data"),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        except FileNotFoundError as e:
            raise VMImageError("genisoimage is not installed (apt-get install genisoimage)") from e
        except subprocess.CalledProcessError as e:
            raise VMImageError(f"genisoimage failed: {e.stderr.decode(errors='replace').strip()}") from e
        os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- the tiny image

_INIT = r"""#!/bin/sh
# /init of the Centaurus tiny VM image (busybox). PID 1: must never exit.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /run /var/log /etc/acpi/PWRF
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null
exec </dev/console >/dev/console 2>&1
echo
echo "@BOOT_BANNER@"
echo "kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu(s), $(awk '/MemTotal/{print $2}' /proc/meminfo) KiB"
for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done; echo "modules: $(cut -d" " -f1 /proc/modules | tr "\\n" " ") input: $(ls /dev/input 2>/dev/null | tr "\\n" " ")"
SEED=/@SEED_DIR@
HN=$(sed -n 's/.*"hostname": *"\([^"]*\)".*/\1/p' $SEED/meta-data 2>/dev/null)
[ -n "$HN" ] && hostname "$HN"
echo "hostname: $(hostname)"
for a in $(cat /proc/cmdline); do
  case "$a" in
    centaurus.userdata=*) echo "${a#centaurus.userdata=}" | base64 -d > /tmp/cmdline-user-data 2>/dev/null ;;
    centaurus.pubkey=*) echo "${a#centaurus.pubkey=}" | base64 -d > /tmp/cmdline-public-key 2>/dev/null ;;
  esac
done
[ -s $SEED/user-data ] || { [ -s /tmp/cmdline-user-data ] && mkdir -p $SEED && cp /tmp/cmdline-user-data $SEED/user-data; }
[ -s $SEED/public-key ] || { [ -s /tmp/cmdline-public-key ] && mkdir -p $SEED && cp /tmp/cmdline-public-key $SEED/public-key; }
if [ -s $SEED/public-key ]; then
  mkdir -p /root/.ssh && cp $SEED/public-key /root/.ssh/authorized_keys
  echo "=== public-key begin ==="; cat $SEED/public-key; echo; echo "=== public-key end ==="
fi
if [ -s $SEED/user-data ]; then
  echo "=== user-data begin ==="; cat $SEED/user-data; echo; echo "=== user-data end ==="
  if [ "$(head -c 2 $SEED/user-data)" = "#!" ]; then
    cp $SEED/user-data /tmp/user-data.sh; chmod +x /tmp/user-data.sh
    /tmp/user-data.sh; echo "=== user-data script exited $? ==="
  fi
fi
if [ -s $SEED/script ]; then
  echo "=== script begin ==="
  if [ "$(head -c 2 $SEED/script)" = "#!" ]; then $SEED/script; else sh $SEED/script; fi
  echo "=== script exited $? ==="
fi
printf '#!/bin/sh\necho "=== centaurus tiny VM: power button, powering off ==="\nsync\npoweroff -f\n' > /etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid -c /etc/acpi -l /var/log/acpid.log
echo "@READY_BANNER@"
trap '' INT TERM HUP
while :; do sleep 3600; done
"""


def _find_kernel() -> tuple[Path, str]:
    cands = sorted(glob.glob("/boot/vmlinuz-*-cloud-amd64"))
    if not cands:
        cands = sorted(glob.glob("/boot/vmlinuz-*"))
    if not cands:
        raise VMImageError("no kernel in /boot (apt-get install linux-image-cloud-amd64)")
    kpath = Path(cands[-1])
    return kpath, kpath.name[len("vmlinuz-") :]


def _find_busybox() -> Path:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.isfile(p):
            out = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout
            if "statically linked" in out or "static-pie" in out or not out:
                return Path(p)
    raise VMImageError("no static busybox found (apt-get install busybox-static)")


def _tiny_initramfs(busybox: Path, kver: str) -> bytes:
    w = CpioWriter()
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "run", "var/log", "lib/modules"):
        w.mkdir(d)
    w.file("bin/busybox", busybox.read_bytes(), 0o755)
    w.symlink("bin/sh", "busybox")
    init = _INIT.replace("@BOOT_BANNER@", BOOT_BANNER).replace("@READY_BANNER@", READY_BANNER)
    w.file("init", init.replace("@SEED_DIR@", SEED_DIR).encode(), 0o755)
    w.file("etc/hostname", b"centaurus-vm\n")
    moddir = Path("/lib/modules") / kver / "kernel" / "drivers"
    for rel in ("acpi/button.ko", "input/evdev.ko"):
        src = moddir / rel
        for cand in (src, Path(str(src) + ".xz"), Path(str(src) + ".zst")):
            if cand.is_file() and cand.suffix == ".ko":  # compressed modules would need a decompressor here
                w.file(f"lib/modules/{cand.name}", cand.read_bytes(), 0o644)
    gz = gzip.compress(w.finish(), compresslevel=6, mtime=0)
    return gz + b"\0" * (-len(gz) % 512)  # archives appended later must start 4-byte aligned


def _write_image_dir(final: Path, files: dict[str, bytes | Path], meta: dict[str, Any]) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, tmp / name)
            else:
                (tmp / name).write_bytes(content)
            os.chmod(tmp / name, 0o644)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old.{os.getpid()}")
            os.rename(final, old)
        os.rename(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_tiny_vm_image(data_dir: Path, ref: str = DEFAULT_VM_IMAGE, force: bool = False) -> VMImage:
    """Build (or keep, if up to date) the tiny kernel+busybox image under ``ref``."""
    name, tag = parse_vm_image_ref(ref)
    kernel, kver = _find_kernel()
    busybox = _find_busybox()
    fingerprint = hashlib.sha256(
        "|".join(
            [
                BUILDER_VERSION,
                str(kernel),
                str(kernel.stat().st_size),
                str(int(kernel.stat().st_mtime)),
                hashlib.sha256(busybox.read_bytes()).hexdigest(),
                _INIT,
            ]
        ).encode()
    ).hexdigest()[:16]
    final = vm_images_dir(data_dir) / name / tag
    current = _load(final)
    if current is not None and current.meta.get("fingerprint") == fingerprint and not force:
        return current
    initrd = _tiny_initramfs(busybox, kver)
    meta = {
        "name": name,
        "tag": tag,
        "kind": "kernel",
        "cmdline": "console=ttyS0,115200 panic=-1 loglevel=4 rdinit=/init",
        "kernelVersion": kver,
        "bootBanner": BOOT_BANNER,
        "readyBanner": READY_BANNER,
        "seed": "initramfs-cpio",  # how the runtime should deliver user data (see module docstring)
        "minMemoryMiB": 96,
        "fingerprint": fingerprint,
        "builtAt": now_rfc3339(),
        "description": "Debian cloud kernel + busybox initramfs; prints user data and public key on ttyS0",
    }
    _write_image_dir(final, {"vmlinuz": kernel, "initrd.img": initrd}, meta)
    img = _load(final)
    assert img is not None
    return img


def import_vm_disk_image(data_dir: Path, ref: str, source: Path, disk_format: str | None = None) -> VMImage:
    """Store a bootable disk image (qcow2 or raw) under ``ref``; pods get an overlay and a config drive."""
    name, tag = parse_vm_image_ref(ref)
    source = Path(source)
    if not source.is_file():
        raise VMImageError(f"disk image {source} does not exist")
    fmt = disk_format
    if fmt is None:
        with open(source, "rb") as f:
            fmt = "qcow2" if f.read(4) == b"QFI\xfb" else "raw"
    fname = "disk.qcow2" if fmt == "qcow2" else "disk.img"
    meta = {
        "name": name,
        "tag": tag,
        "kind": "disk",
        "disk": fname,
        "diskFormat": fmt,
        "seed": "config-drive",
        "builtAt": now_rfc3339(),
    }
    final = vm_images_dir(data_dir) / name / tag
    _write_image_dir(final, {fname: source}, meta)
    img = _load(final)
    assert img is not None
    return img


def build_default_vm_images(data_dir: Path) -> list[str]:
    """Build the VM images Centaurus ships (idempotent); returns their references."""
    return [build_tiny_vm_image(Path(data_dir), DEFAULT_VM_IMAGE).ref]
