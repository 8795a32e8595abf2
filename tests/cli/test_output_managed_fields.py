"""``get -o json|yaml`` hides ``metadata.managedFields`` as kubectl does, unless asked to show them."""

from __future__ import annotations

import json

import pytest

from ctl.cli import output
from ctl.types import kinds

OBJ = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
    "data": {"a": "b"},
}


def test_hidden_by_default_and_shown_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    k = kinds.resolve("configmaps")
    assert k is not None
    output.emit(k, [OBJ], "json", single=True)
    shown = json.loads(capsys.readouterr().out)
    assert "managedFields" not in shown["metadata"] and shown["metadata"]["name"] == "c"
    output.emit(k, [OBJ], "json", single=True, show_managed_fields=True)
    assert json.loads(capsys.readouterr().out)["metadata"]["managedFields"][0]["manager"] == "kubectl"
    assert OBJ["metadata"]["managedFields"]  # the caller's object is not changed


def test_without_managed_fields_leaves_other_objects_alone() -> None:
    plain = {"metadata": {"name": "x"}}
    assert output.without_managed_fields(plain) is plain
    assert output.without_managed_fields({"metadata": 7}) == {"metadata": 7}
