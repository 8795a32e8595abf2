"""``centaurusctl api-resources`` and ``version``: what the API serves, and which versions talk.

``api-resources`` lists the kinds from the kind registry (:mod:`ctl.types.kinds`, the
same declarations the server serves); ``version`` prints the client's version and, unless
``--client``, the server's ``/version``.
"""

from __future__ import annotations

from typing import Any

import typer

from ctl.cli import output
from ctl.cli.common import ContextOpt, KubeconfigOpt, connect, run, with_client
from ctl.types import kinds

app = typer.Typer()

RESOURCE_FORMATS = ("table", "wide", "name")
VERSION_FORMATS = ("text", "json", "yaml")


@app.command("api-resources")
def api_resources(out: str = output.output_option(RESOURCE_FORMATS)) -> None:
    """List the kinds the API serves."""
    output.check_format(out, RESOURCE_FORMATS)
    rows = []
    for k in kinds.KINDS:
        if out == "name":
            print(k.plural if not k.group else f"{k.plural}.{k.group}")
            continue
        row = [k.plural, ",".join(k.short), k.api_version, str(k.namespaced).lower(), k.kind]
        if out == "wide":
            row += [k.scope, ",".join(k.verbs)]
        rows.append(row)
    if out != "name":
        hdr = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"] + (
            ["SCOPE", "VERBS"] if out == "wide" else []
        )
        print(output.plain_table(hdr, rows))


@app.command("version")
def version(
    client_only: bool = typer.Option(False, "--client"),
    out: str = output.output_option(VERSION_FORMATS),
    kubeconfig: str = KubeconfigOpt,
    context: str = ContextOpt,
) -> None:
    """Client and server versions."""
    import ctl

    output.check_format(out, VERSION_FORMATS)
    info: dict[str, Any] = {
        "clientVersion": {"centaurusVersion": ctl.__version__, "gitVersion": f"v{ctl.__version__}"}
    }
    if not client_only:
        client = connect(kubeconfig, context, timeout=5)
        info["serverVersion"] = run(with_client(client, client.request("GET", "/version")))
    if out != "text":
        print(output.dump(info, out), end="")
        return
    print(f"Client Version: v{ctl.__version__}")
    if "serverVersion" in info:
        sv = info["serverVersion"] if isinstance(info["serverVersion"], dict) else {}
        print(f"Server Version: {sv.get('gitVersion')} (Kubernetes API {sv.get('major')}.{sv.get('minor')})")
