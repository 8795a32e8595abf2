"""One TUI session on one kubeconfig context: the client, the scope being viewed, the connection.

:class:`Scope` is what the screens show: a tenant (``None`` = the caller's own, through the
short paths; ``"all"`` = every tenant, through ``/api/v1/tenants/all/...``, for system admins),
a namespace (``None`` = all namespaces) and an optional label selector, applied by the server.

:class:`Session` owns the :class:`~ctl.client.Client` and a second, short-timeout client for
the connection monitor: :meth:`Session.monitor` asks ``/version`` every second and reports
every change of :class:`Connection` (up, or down with the error) to a callback; the feeds'
watches reconnect by themselves (the client resumes from the last resourceVersion, the
informer relists after 410 Gone), so the status line only has to tell the truth about it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ctl.client import ApiError, Client, ClientConfig
from ctl.types.kinds import SYSTEM_TENANT

ALL = "all"


@dataclass(frozen=True)
class Scope:
    tenant: str | None = None
    namespace: str | None = None
    label_selector: str | None = None

    def with_(self, **kw: str | None) -> Scope:
        return replace(self, **kw)  # type: ignore[arg-type]

    @property
    def all_tenants(self) -> bool:
        return self.tenant == ALL


@dataclass(frozen=True)
class Connection:
    up: bool
    message: str
    since: float


class Session:
    def __init__(self, config: ClientConfig, client: Client | None = None) -> None:
        self.config = config
        self.client = client or Client(config)
        self._probe = Client(config, timeout=2.0)
        self.context = config.context or config.server
        self.connection = Connection(False, "connecting", time.monotonic())
        self.admin = False
        self.reconnects = 0

    async def close(self) -> None:
        await self.client.close()
        await self._probe.close()

    def initial_scope(self) -> Scope:
        return Scope(tenant=self.config.tenant, namespace=self.config.namespace or None)

    async def check(self) -> Connection:
        """One probe of the API server (``/version``)."""
        try:
            await self._probe.request("GET", "/version")
            return Connection(True, f"connected to {self.context}", time.monotonic())
        except ApiError as e:  # it answers: connected, whatever it thinks of us
            return Connection(True, f"connected to {self.context} ({e.reason or e.code})", time.monotonic())
        except (ConnectionError, OSError) as e:
            return Connection(False, str(e), time.monotonic())

    async def monitor(self, report: Callable[[Connection], None], interval: float = 1.0) -> None:
        """Probe forever; call ``report`` whenever the connection goes up or down."""
        while True:
            c = await self.check()
            if c.up != self.connection.up or c.message != self.connection.message:
                if c.up and not self.connection.up and self.connection.message != "connecting":
                    self.reconnects += 1
                self.connection = c
                report(c)
            await asyncio.sleep(interval if c.up else interval / 2)

    async def detect_admin(self) -> bool:
        """Whether the caller may list every tenant (a system administrator)."""
        try:
            await self.client.request("GET", "/api/v1/tenants", params={"limit": 1})
            self.admin = True
        except ApiError:
            self.admin = False
        return self.admin

    async def tenants(self) -> list[str]:
        """The tenants the caller can switch to (``all`` first for admins)."""
        if not self.admin:
            return [self.config.tenant or "(mine)"]
        lst = await self.client.list_all("tenants")
        names = sorted(str((t.get("metadata") or {}).get("name")) for t in lst["items"])
        if SYSTEM_TENANT in names:
            names.remove(SYSTEM_TENANT)
            names.insert(0, SYSTEM_TENANT)
        return [ALL, *names]

    async def namespaces(self, tenant: str | None) -> list[str]:
        """The namespaces of ``tenant`` (every tenant's, as ``NAME``s, for ``all``)."""
        lst = await self.client.list_all("namespaces", tenant=tenant)
        names = {str((n.get("metadata") or {}).get("name")) for n in lst["items"]}
        return [ALL, *sorted(names)]
