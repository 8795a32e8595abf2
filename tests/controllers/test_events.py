"""The shared Event recorder (``ctl.client.events``) against a real API server.

Scheduler, controllers and agents all report through it, so these tests pin what they
rely on: repeats aggregate into one Event with a growing count, repeats queued together
coalesce into one write, ``forget`` starts a fresh Event, the queue bound drops instead of
blocking, and cluster-scoped objects' events land in the system tenant's ``default``.
"""

from __future__ import annotations

from typing import Any

from ctl.client import Client
from ctl.client.events import EventRecorder
from tests.controllers.conftest import eventually


async def _subject(client: Client, ns: str, name: str = "subject") -> dict[str, Any]:
    return await client.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}, namespace=ns
    )


async def _events(client: Client, ns: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in (await client.list("events", ns))["items"] if e["reason"] == reason]


async def test_repeats_aggregate_into_one_event(client: Client, ns: str) -> None:
    obj = await _subject(client, ns)
    rec = EventRecorder(client, "test-component")
    first = await rec.write(obj, "Warning", "Flapping", "it flapped")
    again = await rec.write(obj, "Warning", "Flapping", "it flapped")
    other = await rec.write(obj, "Warning", "Flapping", "something else")
    assert first and again and other
    assert again["metadata"]["name"] == first["metadata"]["name"] and again["count"] == 2
    assert other["metadata"]["name"] != first["metadata"]["name"] and other["count"] == 1
    # The fire-and-forget path aggregates into the same Event.
    rec.warning(obj, "Flapping", "it flapped", action="Probing")
    await rec.stop()
    ev = await client.get("events", first["metadata"]["name"], namespace=ns)
    assert ev["count"] == 3 and ev["source"]["component"] == "test-component"
    assert ev["involvedObject"]["uid"] == obj["metadata"]["uid"] and ev["type"] == "Warning"
    assert ev["involvedObject"]["kind"] == "ConfigMap" and ev["metadata"]["tenant"] == "system"


async def test_queued_repeats_coalesce_into_one_write(client: Client, ns: str) -> None:
    obj = await _subject(client, ns)
    rec = EventRecorder(client, "burst")
    for _ in range(200):  # all recorded before the worker gets to run
        rec.normal(obj, "Pulsed", "pulse", action="Pulsing")
    await rec.stop()
    evs = await _events(client, ns, "Pulsed")
    assert len(evs) == 1 and evs[0]["count"] == 200 and evs[0]["action"] == "Pulsing"
    assert rec.written == 1 and rec.dropped == 0 and rec.failed == 0


async def test_forget_and_unaggregated_events_start_new_ones(client: Client, ns: str) -> None:
    obj = await _subject(client, ns)
    rec = EventRecorder(client, "sched")
    rec.normal(obj, "Tried", "try")

    async def written() -> bool:
        return rec.written == 1

    await eventually(written, what="first event written")
    rec.forget(obj["metadata"]["uid"])
    rec.normal(obj, "Tried", "try")
    rec.event(obj, "Normal", "Once", "one", aggregate=False)
    rec.event(obj, "Normal", "Once", "one", aggregate=False)
    await rec.stop()
    tried = await _events(client, ns, "Tried")
    assert sorted(e["count"] for e in tried) == [1, 1]
    assert [e["count"] for e in await _events(client, ns, "Once")] == [1, 1]


async def test_full_queue_drops_instead_of_blocking(client: Client, ns: str) -> None:
    objs = [await _subject(client, ns, f"s{i}") for i in range(5)]
    rec = EventRecorder(client, "bounded", max_pending=2)
    for o in objs:
        rec.warning(o, "Noisy", "noise")
    assert rec.dropped == 3 and rec.pending == 2
    await rec.stop()
    assert len(await _events(client, ns, "Noisy")) == 2 and rec.written == 2


async def test_cluster_scoped_objects_report_into_system_default(client: Client) -> None:
    rec = EventRecorder(client, "nodes", host="host-a")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-ev", "uid": "u1"}}
    ev = await rec.write(node, "Normal", "Hello", "hi")
    assert ev is not None and ev["metadata"]["namespace"] == "default"
    assert ev["metadata"]["tenant"] == "system" and ev["source"] == {"component": "nodes", "host": "host-a"}
    assert ev["involvedObject"]["kind"] == "Node" and "namespace" not in ev["involvedObject"]
