"""The container runtime: pods as OCI bundles run by ``runc``, one network namespace per pod.

Everything a pod owns lives under ``<state_dir>/pods/<uid>/`` (``state_dir`` defaults to
``DATA_DIR/agent/<node>``)::

    pod.json                         the last pod object synced (for adoption and restarts)
    backoff.json                     restart back-off entries of its containers
    etc/hosts, etc/hostname, etc/resolv.conf    bind-mounted into every container
    containers/<name>/<n>/           instance n (= restart count) of a container:
        config.json rootfs/ upper/ work/    the OCI bundle; rootfs is an overlay on the image's
                                            cached rootfs (or a copy when overlayfs is unavailable)
        meta.json                    container ID, image, start time, shim pid
        pid                          container init pid (written by runc)
        exit                         "<exit code> <epoch finished>" (written by the shim)
    logs/<name>/<n>.log              stdout+stderr of instance n (kubelet keeps one file per restart)

A container instance runs as ``sh -c 'runc run ...; record exit status'``: a tiny shim started in its
own session, so it survives the agent; ``runc run`` in the foreground waits for the container, forwards
its exit status (128+signal when killed) and deletes the runc container. The shim then writes the
``exit`` file. Observing a pod therefore needs no daemon: the ``pid`` and ``exit`` files, checked with
``kill(pid, 0)``, say whether an instance is running, and ``runc list`` cross-checks on adoption. A
fresh :class:`RuncRuntime` over the same state directory sees exactly the same containers.

Container IDs are ``<first 12 hex of the pod uid>-<container name>-<restart count>``: stable, unique
per instance, and readable in ``runc list``.

Restart policy and back-off follow kubelet (:mod:`agent.runtime.backoff`); ``sync_pod`` must be called
periodically (every second or so) for restarts to happen, the way kubelet's sync loop does. The pod
network (netns, veth on ``cbr0``, podIP) comes from :mod:`agent.cni.bridge`. CPU and memory limits
become cgroup settings when the cpu and memory controllers are available; otherwise the pod runs
without them and the status message says so.

The package is split along those seams: :mod:`~agent.runtime.runc.spawn` (starting and reaping
shims), :mod:`~agent.runtime.runc.oci` (the OCI config and the pod's ``etc`` files),
:mod:`~agent.runtime.runc.instance` (instance records and root filesystems),
:mod:`~agent.runtime.runc.status` (container states from those records) and
:mod:`~agent.runtime.runc.runtime` (the runtime). Logs are served by :mod:`agent.runtime.logs`.
"""

from agent.runtime.runc.oci import DEFAULT_CAPS, expand_vars, parse_cpu, parse_memory
from agent.runtime.runc.runtime import RUNC, RuncRuntime
from agent.runtime.runc.spawn import spawn_detached

__all__ = [
    "DEFAULT_CAPS",
    "RUNC",
    "RuncRuntime",
    "expand_vars",
    "parse_cpu",
    "parse_memory",
    "spawn_detached",
]
