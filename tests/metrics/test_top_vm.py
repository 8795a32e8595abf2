"""``kubectl top pod`` for a VM pod: the figures come from its libvirt domain (QEMU's CPU time, RSS).

The cluster is the one the VM end-to-end tests use (``init --vm-runtime-uri qemu:///system``,
skipped with the reason where libvirt, QEMU or the VM image are missing); a tiny guest boots
under QEMU and must show CPU and memory use, as a container pod does. The last test tears the
cluster down and checks no domain is left.
"""

from __future__ import annotations

import pytest

from tests.e2e import test_vms
from tests.e2e.conftest import E2ECluster, is_ready, wait_for
from tests.metrics.conftest import kubectl, needs_kubectl

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.vm]

cluster = test_vms.cluster  # the VM tests' module fixture: a runc + libvirt cluster


@needs_kubectl
def test_top_pod_shows_the_vm_domain(cluster: E2ECluster) -> None:
    cluster.apply(test_vms.vm_pod("vmtop"))
    wait_for(
        lambda: (p := cluster.pod("default", "vmtop")) and is_ready(p),
        120,
        "the VM pod to run",
        diag=lambda: cluster.describe_pods("default"),
    )

    def row() -> list[str] | None:
        r = kubectl(cluster.kubeconfig, "top", "pod", "vmtop")
        if r.returncode != 0:
            return None
        cells = r.stdout.strip().splitlines()[1].split()
        return cells if cells[1] != "0m" else None  # a guest that booted has used CPU

    cells = wait_for(row, 60, "kubectl top pod vmtop to show the domain's CPU", interval=1)
    assert cells[0] == "vmtop" and int(cells[1][:-1]) > 0 and int(cells[2][:-2]) > 0, cells
    r = kubectl(cluster.kubeconfig, "top", "pod", "vmtop", "--containers")
    assert r.returncode == 0 and r.stdout.strip().splitlines()[1].split()[1] == "e2evm", r.stdout + r.stderr


def test_teardown_leaves_nothing_behind(cluster: E2ECluster) -> None:
    cluster.teardown()
