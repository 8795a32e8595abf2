"""The TUI's data layer without a terminal or a server: discovery entries, rows, sorting, models.

These are the pure parts the screens build on: a discovery entry for a kind this client has
never heard of becomes a usable Kind (so new kinds appear without code), ``:`` words resolve as
the CLI resolves them, ages and numbers sort as people expect, allocation sums follow pod
events, the network tree nests endpoints under their subnet and VPC, and a bad edit is refused
before anything is sent.
"""

from __future__ import annotations

import pytest

from ctl.client import Client, ClientConfig
from ctl.tui.data import actions, network, nodes, rows
from ctl.tui.data.discovery import Catalog, _add_list, kind_from_entry
from ctl.types import kinds


def test_unknown_kind_from_discovery_is_usable() -> None:
    k = kind_from_entry(
        "example.io/v1alpha1",
        {
            "name": "widgets",
            "singularName": "widget",
            "namespaced": True,
            "kind": "Widget",
            "verbs": ["get", "list", "watch"],
            "shortNames": ["wd"],
        },
    )
    assert k is not None and k.group == "example.io" and k.version == "v1alpha1" and k.namespaced
    assert Client(ClientConfig("http://127.0.0.1:1")).path(k, "ns1", tenant="t") == (
        "/apis/example.io/v1alpha1/tenants/t/namespaces/ns1/widgets"
    )
    assert kind_from_entry("v1", {"name": "pods/log", "kind": "Pod"}) is None
    assert kind_from_entry("v1", {"name": "pods", "kind": "Pod"}) is kinds.resolve("pods")


def test_catalog_resolves_words_and_records_subresources() -> None:
    cat = Catalog()
    _add_list(
        cat,
        "apps/v1",
        {
            "resources": [
                {"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": ["list"]},
                {"name": "deployments/scale", "kind": "Scale", "namespaced": True, "verbs": ["get"]},
                {"name": "nolist", "kind": "NoList", "namespaced": True, "verbs": ["get"]},
            ]
        },
    )
    d = kinds.resolve("deployments")
    assert cat.kinds == [d] and d is not None and cat.has(d, "scale")
    for word in ("deploy", "Deployment", "deployments.apps", "DEPLOYMENTS"):
        assert cat.resolve(word) is d
    assert cat.resolve("nolist") is None and cat.resolve("") is None


def test_columns_ages_on_the_injected_clock_and_sorting() -> None:
    pod = kinds.resolve("pods")
    assert pod is not None
    cols = rows.columns(pod, all_tenants=True, all_namespaces=True, clock=lambda: 1_000_000.0 + 3 * 86400)
    assert [c.header for c in cols][:3] == ["TENANT", "NAMESPACE", "NAME"]
    obj = {
        "metadata": {
            "name": "p",
            "namespace": "n",
            "tenant": "t",
            "creationTimestamp": "1970-01-12T13:46:40Z",
        }
    }
    cells = rows.cells(cols, obj)
    assert cells[:3] == ("t", "n", "p") and cells[-1] == "3d"
    assert rows.cells(cols, {"metadata": {"name": "bad", "labels": 7}, "status": 5})[2] == "bad"
    key = rows.sort_key("AGE")
    assert sorted(["2h", "5s", "4d", "3m", "1h5m"], key=key) == ["5s", "3m", "1h5m", "2h", "4d"]
    assert sorted(["10", "9", "1/3", "abc"], key=rows.sort_key("READY")) == ["1/3", "9", "10", "abc"]
    assert rows.matches("WEB", ("web-1", "Running")) and not rows.matches("db", ("web-1", "Running"))


def test_allocation_follows_pod_events() -> None:
    a = nodes.Allocation()
    spec = {
        "nodeName": "n1",
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
    }
    assert a.update("t/ns/p", {"spec": spec, "status": {"phase": "Running"}}) == "n1"
    assert a.of("n1").cpu == 500 and a.of("n1").memory == 1 << 30 and a.of("n1").pods == 1
    a.update("t/ns/p", {"spec": {**spec, "nodeName": "n2"}})  # cannot happen, but moves the sum
    assert a.of("n1").pods == 0 and a.of("n2").pods == 1
    a.update("t/ns/p", {"spec": {**spec, "nodeName": "n2"}, "status": {"phase": "Succeeded"}})
    assert a.of("n2").pods == 0
    assert nodes.node_capacity({"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}) == (
        nodes.Usage(4000.0, 8 * 2**30, 110)
    )


def test_network_topology_nests_endpoints() -> None:
    md = lambda name, **kw: {"name": name, "tenant": "t", **kw}  # noqa: E731
    forest = network.topology(
        {
            "vpcs": [
                {
                    "metadata": md("v1"),
                    "spec": {"cidr": "10.0.0.0/16"},
                    "status": {"vni": 7, "phase": "Provisioned"},
                }
            ],
            "subnets": [
                {
                    "metadata": md("s1"),
                    "spec": {"vpc": "v1", "cidr": "10.0.1.0/24"},
                    "status": {"bouncers": ["h1"]},
                },
                {"metadata": md("lost"), "spec": {"vpc": "gone", "cidr": "10.1.0.0/24"}},
            ],
            "endpoints": [
                {
                    "metadata": md("e1", namespace="ns"),
                    "spec": {"subnet": "s1", "ip": "10.0.1.5", "droplet": "h2"},
                }
            ],
            "dividers": [{"metadata": md("d1"), "spec": {"vpc": "v1", "droplet": "h3", "ip": "192.168.0.3"}}],
            "droplets": [{"metadata": {"name": "h2"}, "spec": {"ip": "192.168.0.2"}}],
        }
    )
    vpc, orphans = forest
    assert vpc.label == "vpc t/v1  10.0.0.0/16  vni 7  [Provisioned]"
    assert vpc.children[0].label == "dividers: h3 192.168.0.3"
    subnet = vpc.children[1]
    assert subnet.children[0].label == "bouncers: h1"
    assert subnet.children[1].label.startswith("endpoint ns/e1  10.0.1.5  host h2 (192.168.0.2)")
    assert orphans.label == "(no VPC)" and orphans.children[0].label.startswith("subnet lost")


async def test_bad_edits_are_refused_before_sending() -> None:
    c = Client(ClientConfig("http://127.0.0.1:1"))  # nothing listens: any request would fail differently
    pod = kinds.resolve("pods")
    assert pod is not None
    original = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}}
    assert (await actions.apply_yaml(c, pod, original, actions.to_yaml(original))).endswith("no changes")
    with pytest.raises(ValueError, match="does not parse"):
        await actions.apply_yaml(c, pod, original, "a: [")
    with pytest.raises(ValueError, match="name cannot be changed"):
        await actions.apply_yaml(c, pod, original, "metadata: {name: q}")
    with pytest.raises(ValueError, match="cannot be scaled"):
        await actions.scale(c, pod, original, 2)
    await c.close()
