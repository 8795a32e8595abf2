"""Server-side apply works for every kind: each kind's example manifest (manifests/) is
created by an apply, re-applied without a write, gains and loses a label through its
manager, and a second manager's different value is a conflict naming the field."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctl.types import kinds
from ctl.types.kinds import Kind
from tests.api.conftest import Http, status_of

ROOT = Path(__file__).resolve().parents[2]
APPLY = "application/apply-patch+yaml"


def _examples() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in sorted((ROOT / "manifests").rglob("*.yaml")):
        for d in yaml.safe_load_all(p.read_text()):
            if isinstance(d, dict) and d.get("kind"):
                out.setdefault(d["kind"], d)
    return out


EXAMPLES = _examples()


def path_of(k: Kind, ns: str, name: str) -> str:
    base = f"/apis/{k.group}/{k.version}" if k.group else f"/api/{k.version}"
    if k.namespaced:
        return f"{base}/namespaces/{ns}/{k.plural}/{name}"
    return f"{base}/{k.plural}/{name}"


def apply(http: Http, path: str, body: dict[str, Any], manager: str) -> Any:
    return http.req("PATCH", path, data=yaml.safe_dump(body), ct=APPLY, params={"fieldManager": manager})


@pytest.mark.parametrize("k", kinds.KINDS, ids=[k.kind for k in kinds.KINDS])
def test_apply_every_kind(http: Http, ns: str, k: Kind) -> None:
    assert k.kind in EXAMPLES, f"no example manifest for {k.kind}"
    doc = copy.deepcopy(EXAMPLES[k.kind])
    name = f"ssa-{k.kind.lower()}-{uuid.uuid4().hex[:6]}"
    md = doc.setdefault("metadata", {})
    md["name"] = name
    md.pop("namespace", None)
    md["annotations"] = {**(md.get("annotations") or {}), "owner": "yes"}  # a field every kind has
    doc.pop("status", None)
    p = path_of(k, ns, name)
    r = apply(http, p, doc, "owner")
    assert r.status_code == 201, r.text
    created = r.json()
    assert [(e["manager"], e["operation"]) for e in created["metadata"]["managedFields"]] == [
        ("owner", "Apply")
    ]
    rv = created["metadata"]["resourceVersion"]
    r = apply(http, p, doc, "owner")
    assert r.status_code == 200 and r.json()["metadata"]["resourceVersion"] == rv, r.text
    labelled = copy.deepcopy(doc)
    labelled["metadata"]["labels"] = {**(md.get("labels") or {}), "ssa-test": "one"}
    r = apply(http, p, labelled, "owner")
    assert r.status_code == 200 and r.json()["metadata"]["labels"]["ssa-test"] == "one", r.text
    rival = {
        "apiVersion": doc["apiVersion"],
        "kind": k.kind,
        "metadata": {"name": name, "labels": {"ssa-test": "two"}},
    }
    r = apply(http, p, rival, "rival")
    assert r.status_code == 409, r.text
    assert status_of(r)["details"]["causes"][0]["field"] == ".metadata.labels.ssa-test"
    r = apply(http, p, doc, "owner")  # stops applying the label: it goes
    assert "ssa-test" not in (r.json()["metadata"].get("labels") or {}), r.text
    if not k.namespaced:
        http.delete(p)
