"""The ``fieldValidation`` query parameter, as Kubernetes defines it, against a real API server.

``Strict`` refuses an object with unknown fields (400, "strict decoding error", nothing
stored), ``Warn`` drops them and says so in a ``Warning: 299`` header, ``Ignore`` drops them
silently; without the parameter this server keeps them (its behaviour before the parameter
existed). Wrong *types* are refused in every mode.
"""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Http, pod, status_of


def _bogus(name: str) -> dict[str, Any]:
    p = pod(name)
    p["spec"]["containers"][0]["bogus"] = 1
    p["spec"]["alsoBogus"] = "x"
    return p


def test_strict_refuses_unknown_fields_and_stores_nothing(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", _bogus("strict"), params={"fieldValidation": "Strict"})
    assert r.status_code == 400, r.text
    st = status_of(r)
    assert st["reason"] == "BadRequest" and "strict decoding error" in st["message"]
    assert "spec.containers[0].bogus" in st["message"] and "spec.alsoBogus" in st["message"]
    assert http.get(f"/api/v1/namespaces/{ns}/pods/strict").status_code == 404


def test_warn_drops_and_warns(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", _bogus("warn"), params={"fieldValidation": "Warn"})
    assert r.status_code == 201, r.text
    warning = r.headers.get("Warning", "")
    assert warning.startswith('299 - "') and "bogus" in warning
    got = http.get(f"/api/v1/namespaces/{ns}/pods/warn").json()
    assert "bogus" not in got["spec"]["containers"][0] and "alsoBogus" not in got["spec"]


def test_ignore_drops_silently(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", _bogus("ignore"), params={"fieldValidation": "Ignore"})
    assert r.status_code == 201, r.text
    assert "Warning" not in r.headers
    assert "alsoBogus" not in http.get(f"/api/v1/namespaces/{ns}/pods/ignore").json()["spec"]


def test_strict_applies_to_update_and_patch(http: Http, ns: str) -> None:
    assert http.post(f"/api/v1/namespaces/{ns}/pods", pod("upd")).status_code == 201
    cur = http.get(f"/api/v1/namespaces/{ns}/pods/upd").json()
    cur["spec"]["alsoBogus"] = "x"
    r = http.put(f"/api/v1/namespaces/{ns}/pods/upd", cur, params={"fieldValidation": "Strict"})
    assert r.status_code == 400 and "strict decoding error" in status_of(r)["message"]
    r = http.patch(
        f"/api/v1/namespaces/{ns}/pods/upd",
        {"spec": {"alsoBogus": "x"}},
        params={"fieldValidation": "Strict"},
    )
    assert r.status_code == 400, r.text
    assert "alsoBogus" not in http.get(f"/api/v1/namespaces/{ns}/pods/upd").json()["spec"]


def test_wrong_types_refused_in_every_mode(http: Http, ns: str) -> None:
    for i, mode in enumerate(("Strict", "Warn", "Ignore", None)):
        p = pod(f"typed-{i}")
        p["spec"]["containers"] = 7
        r = http.post(f"/api/v1/namespaces/{ns}/pods", p, params={"fieldValidation": mode} if mode else None)
        assert r.status_code == 422, (mode, r.text)


def test_bad_mode_is_a_400_naming_the_parameter(http: Http, ns: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", pod("badmode"), params={"fieldValidation": "Loose"})
    assert r.status_code == 400 and "fieldValidation" in status_of(r)["message"]
