"""Issued tokens of a tenant: listed without their secret, revoked at once, private per tenant."""

from __future__ import annotations

from tests.tenancy.conftest import Tenancy
from tests.tenancy.test_rbac_quota import bind, user

TOKENS = "/apis/auth.centaurus.io/v1/tokenrequests"


def test_list_and_revoke_issued_tokens(tenancy: Tenancy) -> None:
    a, b = tenancy.a, tenancy.b
    code, issued = tenancy.issue(a, "tok-bob", groups=["auditors"])
    assert code == 201, issued
    secret, name = issued["status"]["token"], issued["metadata"]["name"]
    bob = tenancy.caller(secret)
    assert bob.get("/api/v1/namespaces/default/configmaps")[0] == 403  # authenticated, no role yet

    code, listing = a.get(TOKENS)
    assert code == 200 and listing["kind"] == "TokenRequestList", listing
    mine = [t for t in listing["items"] if t["metadata"]["name"] == name]
    assert len(mine) == 1 and mine[0]["spec"]["user"] == "tok-bob"
    assert "auditors" in mine[0]["spec"]["groups"] and mine[0]["metadata"]["tenant"] == "a"
    assert mine[0]["status"]["issuedBy"] and "token" not in mine[0]["status"]
    assert secret not in str(listing)  # the token itself is never shown again
    assert a.get(f"{TOKENS}/{name}")[1]["spec"]["user"] == "tok-bob"

    # another tenant neither sees nor revokes it, and cannot even tell it exists
    code, theirs = b.get(TOKENS)
    assert code == 200 and name not in str(theirs)
    assert b.get(f"{TOKENS}/{name}")[0] == 404
    assert b.call("DELETE", f"{TOKENS}/{name}")[0] == 404
    assert b.get("/apis/auth.centaurus.io/v1/tenants/a/tokenrequests")[0] == 403
    # nor does a user of the tenant without rights on tokenrequests
    viewer = user(tenancy, a, "tok-viewer")
    bind(a, "tok-viewer-view", "view", "tok-viewer")
    assert viewer.get(TOKENS)[0] == 403
    assert a.call("PUT", f"{TOKENS}/{name}", {})[0] == 405
    assert a.call("DELETE", TOKENS)[0] == 405  # revoking takes a name, never "all of them"
    code, out = tenancy.admin.get("/apis/auth.centaurus.io/v1/tenants/all/tokenrequests")
    assert code == 400 and "one tenant" in out["message"], out
    assert name in str(a.get(TOKENS)[1])  # none of the refused requests touched it

    # revoked: the very next request with it is unauthenticated
    code, out = a.call("DELETE", f"{TOKENS}/{name}")
    assert code == 200 and out["status"] == "Success", out
    assert bob.get("/api/v1/namespaces/default/configmaps")[0] == 401
    assert name not in str(a.get(TOKENS)[1])
    assert a.call("DELETE", f"{TOKENS}/{name}")[0] == 404
