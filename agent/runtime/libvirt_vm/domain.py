"""The libvirt domain of a VM pod: its XML, the pod metadata it carries, and how it is read back.

:func:`domain_xml` builds the persistent domain definition: memory and vCPUs from the pod
(:func:`~ctl.types.vm_validation.vm_resources`), a direct kernel boot with the pod's own initrd for
kernel images or a qcow2 overlay plus a NoCloud config drive for disk images, the serial console
logged to ``console.log``, and a ``<centaurus:pod>`` metadata element (namespace :data:`META_NS`)
naming the pod's uid, name, namespace, tenant, VM name, image, node and image kind.
:func:`meta_of` reads that element back, which is how a restarted agent finds its domains
without any other record. :func:`observe` is the one question asked of a running domain.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import libvirt

from agent.runtime.libvirt_vm.state import NOSTATE, SHUTOFF, PodState
from ctl.images.vm_image import VMImage
from ctl.types.vm_validation import vm_resources

META_NS = "https://centaurus.io/xmlns/vm/1"
META_KEY = "centaurus"


def meta_of(dom: libvirt.virDomain) -> dict[str, str] | None:
    """The ``<centaurus:pod>`` attributes of a domain, or None if it is not a Centaurus pod's."""
    try:
        xml = dom.XMLDesc(0)
    except libvirt.libvirtError:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    el = root.find(f"metadata/{{{META_NS}}}pod")
    if el is None:
        return None
    return dict(el.attrib)


def observe(dom: libvirt.virDomain | None) -> tuple[int, bool, str]:
    """(virDomainState, has a managed save image, domain UUID); NOSTATE when there is no domain."""
    if dom is None:
        return NOSTATE, False, ""
    try:
        state, _reason = dom.state(0)
        ms = bool(dom.hasManagedSaveImage(0)) if state == SHUTOFF else False
        return state, ms, dom.UUIDString()
    except libvirt.libvirtError:
        return NOSTATE, False, ""


def destroy_quietly(dom: libvirt.virDomain) -> None:
    """Hard power-off if the domain runs; a domain already gone is fine."""
    with contextlib.suppress(libvirt.libvirtError):
        if dom.isActive():
            dom.destroy()


def domain_xml(
    pod: dict[str, Any],
    st: PodState,
    image: VMImage,
    pod_dir: Path,
    *,
    node_name: str,
    virt: str,
    is_test: bool,
    default_memory_mib: int,
) -> str:
    """The persistent domain definition of a VM pod (``virt``: ``kvm``, ``qemu`` or ``test``)."""
    md = pod["metadata"]
    vm = pod["spec"]["virtualMachine"]
    vcpus, mem = vm_resources(vm, default_memory_mib)
    mem = max(mem, int(image.meta.get("minMemoryMiB", 0)))
    meta_attrs = {
        "uid": md["uid"],
        "name": md.get("name", ""),
        "namespace": md.get("namespace", "default"),
        "tenant": md.get("tenant", "system"),
        "vmName": vm["name"],
        "image": vm["image"],
        "node": node_name,
        "kind": image.kind,
    }
    meta_xml = " ".join(f"{k}={quoteattr(v)}" for k, v in meta_attrs.items())
    console = pod_dir / "console.log"
    if image.kind == "kernel":
        assert image.kernel is not None
        cmdline = image.cmdline or "console=ttyS0"
        os_xml = (
            f"<kernel>{escape(str(image.kernel))}</kernel><initrd>{escape(str(pod_dir / 'initrd.img'))}</initrd>"
            f"<cmdline>{escape(cmdline)}</cmdline>"
        )
        disks = ""
    else:
        os_xml = "<boot dev='hd'/>"
        disks = (
            f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file={quoteattr(str(pod_dir / 'disk.qcow2'))}/><target dev='vda' bus='virtio'/></disk>"
            f"<disk type='file' device='cdrom' snapshot='no'><driver name='qemu' type='raw'/>"
            f"<source file={quoteattr(str(pod_dir / 'config.iso'))}/><target dev='hdc' bus='ide'/><readonly/></disk>"
        )
    cpu = "<cpu mode='host-passthrough'/>" if virt == "kvm" else ""
    machine = "" if is_test else " machine='pc'"
    # qemu runs as root with no relabelling: the image store is shared by many domains and must not be
    # chowned by libvirt's DAC driver, and the data dir may sit under a 0700 parent. The agent is root anyway.
    seclabel = (
        "" if is_test else "<seclabel type='static' model='dac' relabel='no'><label>+0:+0</label></seclabel>"
    )
    return f"""<domain type='{virt}'>
  <name>{escape(st["domain"])}</name>
  <title>{escape(f"{meta_attrs['tenant']}/{meta_attrs['namespace']}/{meta_attrs['name']}")}</title>
  <description>Centaurus VM pod {escape(meta_attrs["uid"])} ({escape(vm["name"])}, image {escape(vm["image"])})</description>
  <metadata><{META_KEY}:pod xmlns:{META_KEY}="{META_NS}" {meta_xml}/></metadata>
  <memory unit='MiB'>{mem}</memory>
  <vcpu>{vcpus}</vcpu>
  <os><type arch='x86_64'{machine}>hvm</type>{os_xml}</os>
  <features><acpi/><apic/></features>
  {cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  {seclabel}
  <devices>
    {disks}
    <serial type='pty'><log file={quoteattr(str(console))} append='on'/><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>"""
