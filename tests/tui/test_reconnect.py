"""The TUI across an API server restart: the status line goes red, then green, and the table stays live.

A private API server (``fresh_apiserver``) is stopped under a running TUI and started again on
the same port and data directory; the status line must report the outage and the reconnection
by itself, and a pod created after the restart must appear without any key being pressed
(the informer's watch resumed or relisted).
"""

from __future__ import annotations

from ctl.client import SyncClient
from tests.cluster import ApiServerProcess
from tests.tui.conftest import open_tui, pod, until


async def test_reconnects_after_apiserver_restart(fresh_apiserver: ApiServerProcess) -> None:
    c = SyncClient(fresh_apiserver.config())
    try:
        c.create(pod("before"), namespace="default")
        async with open_tui(fresh_apiserver, "default") as (app, pilot):
            status = app.main.status
            await until(
                lambda: [k.rsplit("/", 1)[-1] for k in app.main.table.visible_keys()] == ["before"], "list"
            )
            await until(lambda: status.up, "connected")
            fresh_apiserver.stop()
            await until(lambda: not status.up, "the status line to show the outage")
            assert "cannot reach" in status.connection or "did not answer" in status.connection
            fresh_apiserver.start()
            await until(lambda: status.up, "the status line to show the reconnection", timeout=30)
            assert app.main.tui.session.reconnects >= 1  # a slow restart may take two tries
            c.create(pod("after"), namespace="default")
            await until(
                lambda: (
                    sorted(k.rsplit("/", 1)[-1] for k in app.main.table.visible_keys()) == ["after", "before"]
                ),
                "a pod created after the restart to appear",
                timeout=30,
            )
    finally:
        c.close()
