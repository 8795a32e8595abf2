"""The VM runtime: pods with ``spec.virtualMachine`` run as libvirt domains.

One pod is one persistent libvirt domain, named ``cx-<tenant>-<namespace>-<pod>-<uid8>`` (recognisable in
``virsh list``, unique through the uid prefix, sanitised and bounded in length). The domain XML carries a
``<centaurus:pod>`` metadata element (namespace :data:`META_NS`) with the pod's uid, name, namespace,
tenant, VM name, image and node, so a restarted agent rebuilds its view from libvirt alone
(:meth:`LibvirtRuntime.list_pods`) and a domain whose pod is gone can be found and removed.

Per-pod files live in ``DATA_DIR/vms/<uid>/``: ``state.json`` (restart count, start time, snapshots, the
last action override -- what adoption needs besides the domain itself), ``console.log``, the pod's
``initrd.img`` (the image's initramfs with a seed archive carrying user data, public key and script, see
:mod:`ctl.images.vm_image`), ``snapshots/`` and, for disk images, ``disk.qcow2`` (a copy-on-write overlay)
and ``config.iso`` (a NoCloud config drive).

URIs: ``qemu:///system`` runs real guests (KVM if :func:`~agent.runtime.libvirt_daemon.probe_kvm` finds it
usable, else QEMU TCG); ``test:///default`` is libvirt's in-process mock driver: every API works on
in-memory domains and no guest runs, so the whole state machine is testable in milliseconds. Under the
test driver the runtime writes the console log itself (lifecycle lines plus the user data, as the tiny
image would print it).

``sync_pod`` converges the domain towards ``powerSpec`` (or towards the most recent ``stop``/``start``
action, until the pod's ``powerSpec`` changes):

==============  ================================================================================
``Running``     define + start; resume a paused domain; restore a suspended one; restart one the
                guest powered off (per ``restartPolicy``) or that crashed (``restartCount`` + 1)
``Paused``      ``virDomainSuspend`` (vCPUs stopped, memory kept)
``Suspended``   ``virDomainManagedSave`` (memory saved to disk, QEMU gone; ``Running`` restores it)
``Shutdown``    ACPI ``virDomainShutdown``; ``virDomainDestroy`` once the grace period has passed
==============  ================================================================================

The package is split along those seams: :mod:`~agent.runtime.libvirt_vm.state` (``state.json`` and
domain names), :mod:`~agent.runtime.libvirt_vm.domain` (the domain XML and its metadata),
:mod:`~agent.runtime.libvirt_vm.prepare` (image and seed), :mod:`~agent.runtime.libvirt_vm.status`
(what is reported), :mod:`~agent.runtime.libvirt_vm.actions` (reboot, snapshot, restore, stop, start)
and :mod:`~agent.runtime.libvirt_vm.runtime` (the runtime).
"""

from agent.runtime.libvirt_vm.domain import META_KEY, META_NS
from agent.runtime.libvirt_vm.prepare import KeyResolver
from agent.runtime.libvirt_vm.runtime import LibvirtRuntime
from agent.runtime.libvirt_vm.state import domain_name

__all__ = ["META_KEY", "META_NS", "KeyResolver", "LibvirtRuntime", "domain_name"]
