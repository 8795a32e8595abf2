"""The main screen: one kind's objects in a live table, and everything you can do to them.

What is listed is one kind (any the server serves, from discovery: ``:KIND`` or ``k`` for the
list) in one scope (tenant, namespace, label selector: ``t``, ``n``/``0``, ``/-l SEL``). One
:class:`~ctl.tui.data.feed.Feed` feeds the :class:`~ctl.tui.widgets.resource_table.ResourceTable`;
switching kind or scope replaces the feed. The status line shows the connection (the
session's monitor), the scope and the outcome of the last action.

Actions on the selected row ask before they change anything (delete, scale, rollout
restart/undo, cordon/uncordon/drain, VM actions) and report one line; what the server refuses
is shown, never raised. ``e`` opens ``$EDITOR`` on the object's YAML and PUTs the result.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import tempfile
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from ctl.client import ApiError
from ctl.tui.data import actions, rows
from ctl.tui.data.discovery import Catalog, discover
from ctl.tui.data.feed import Feed
from ctl.tui.data.session import ALL, Connection, Scope
from ctl.tui.screens.capacity import CapacityScreen
from ctl.tui.screens.chooser import ChooserScreen
from ctl.tui.screens.confirm import ConfirmScreen
from ctl.tui.screens.detail import DetailScreen
from ctl.tui.screens.help import HelpScreen
from ctl.tui.screens.logs import LogScreen
from ctl.tui.screens.prompt import PromptScreen
from ctl.tui.screens.topology import TopologyScreen
from ctl.tui.widgets.command_bar import CommandBar
from ctl.tui.widgets.resource_table import ResourceTable
from ctl.tui.widgets.status_line import StatusLine
from ctl.types import kinds
from ctl.types.actions import ACTION_OPERATIONS
from ctl.types.kinds import Kind

if TYPE_CHECKING:
    from ctl.tui.app import CentaurusApp

KEYS: list[tuple[str, str, str, bool]] = [
    # (key, action, description, shown in the footer)
    ("question_mark", "help", "Help", True),
    ("colon", "command", "Command", True),
    ("slash", "filter", "Filter", True),
    ("k", "kinds", "Kinds", False),
    ("d", "describe", "Describe", True),
    ("y", "yaml", "YAML", True),
    ("l", "logs", "Logs", True),
    ("e", "edit", "Edit", True),
    ("ctrl+d", "delete", "Delete", True),
    ("s", "scale", "Scale", False),
    ("r", "restart", "Rollout restart", False),
    ("u", "undo", "Rollout undo", False),
    ("c", "cordon", "Cordon", False),
    ("U", "uncordon", "Uncordon", False),
    ("D", "drain", "Drain", False),
    ("a", "vm_action", "VM action", False),
    ("t", "tenant", "Tenant", True),
    ("n", "namespace", "Namespace", True),
    ("0", "all_namespaces", "All namespaces", False),
    ("o", "sort_next", "Sort by next column", False),
    ("O", "sort_reverse", "Reverse sort", False),
    ("N", "capacity", "Node capacity view", False),
    ("X", "xray", "Network view", False),
    ("escape", "clear", "Clear filter/selector", False),
    ("q", "app.quit", "Quit", True),
]
FILTER_NOW = 1000  # rows up to which the filter is applied on every keystroke
FILTER_DEBOUNCE = 0.15  # seconds of no typing before a bigger table is filtered
HELP_KEYS = [
    (k.replace("question_mark", "?").replace("colon", ":").replace("slash", "/"), d) for k, _, d, _ in KEYS
]
HELP_KEYS.append(("click header", "sort by that column (again: reversed)"))


class ResourcesScreen(Screen[None]):
    BINDINGS = [Binding(k, a, d, show=s) for k, a, d, s in KEYS]

    def __init__(self) -> None:
        super().__init__()
        self.catalog = Catalog()
        self.kind: Kind | None = None
        self.scope = Scope()
        self.feed: Feed | None = None
        self.ready = asyncio.Event()
        self._counts_scheduled = False
        self._filter_timer: Timer | None = None

    @property
    def tui(self) -> CentaurusApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield ResourceTable(id="table", tick=self.tui.tick)
        yield CommandBar(id="command")
        yield StatusLine(id="status")
        yield Footer()

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def status(self) -> StatusLine:
        return self.query_one(StatusLine)

    def on_mount(self) -> None:
        self.scope = self.tui.session.initial_scope()
        self.monitor()
        self.start()

    async def on_unmount(self) -> None:
        if self.feed is not None:
            await self.feed.stop()

    # ------------------------------------------------------------------ start, connection
    @work(group="monitor")
    async def monitor(self) -> None:
        await self.tui.session.monitor(self._connection, self.tui.monitor_interval)

    def _connection(self, c: Connection) -> None:
        self.status.up = c.up
        self.status.connection = c.message

    @work(group="start")
    async def start(self) -> None:
        s = self.tui.session
        while True:
            try:
                await s.detect_admin()
                self.catalog = await discover(s.client)
                break
            except (ApiError, ConnectionError) as e:
                self.status.message = f"discovery failed: {e}; retrying"
                await asyncio.sleep(1.0)
        self.status.message = ""
        await self.switch(self.catalog.resolve(self.tui.initial_kind) or self.catalog.kinds[0])
        self.ready.set()

    async def switch(self, kind: Kind | None = None, scope: Scope | None = None) -> None:
        """Show ``kind`` in ``scope`` (each defaults to the current one): a new feed, new columns."""
        if self.feed is not None:
            await self.feed.stop()
        self.kind = kind or self.kind
        self.scope = scope or self.scope
        assert self.kind is not None
        all_ns = self.scope.namespace is None
        self.table.configure(rows.columns(self.kind, self.scope.all_tenants, all_ns, self.tui.clock))
        self.feed = Feed(self.tui.session.client, self.kind, self.scope, self._on_change)
        self.feed.start()
        self._show_scope()

    def _on_change(self, key: str, obj: dict[str, Any] | None) -> None:
        self.table.push(key, obj)
        if not self._counts_scheduled:  # after the table's flush (same message queue)
            self._counts_scheduled = True
            self.table.call_later(self._show_counts)

    def _show_scope(self) -> None:
        assert self.kind is not None
        sc = self.scope
        tenant = sc.tenant or "(mine)"
        ns = sc.namespace or ALL if self.kind.namespaced else "-"
        parts = [f"tenant {tenant}", f"ns {ns}", self.kind.plural]
        if sc.label_selector:
            parts.append(f"-l {sc.label_selector}")
        if self.table.filter_text:
            parts.append(f"/{self.table.filter_text}")
        self.status.scope = " ".join(parts)
        self._show_counts()

    def _show_counts(self) -> None:
        self._counts_scheduled = False
        if self.kind is None:
            return
        shown, total = self.table.row_count, len(self.table.model)
        count = f"{shown}" if shown == total else f"{shown}/{total}"
        title = f" {self.kind.plural}({self.scope.namespace or ALL if self.kind.namespaced else ''})[{count}]"
        self.query_one("#title", Static).update(title)

    # ------------------------------------------------------------------ command bar and filter
    def action_command(self) -> None:
        self.query_one(CommandBar).open(":")

    def action_filter(self) -> None:
        self.query_one(CommandBar).open("/", self.table.filter_text)

    def on_input_changed(self, event: Input.Changed) -> None:
        bar = self.query_one(CommandBar)
        if event.input is bar and bar.mode == "/" and not event.value.startswith("-l"):
            # Big tables filter once typing pauses (a rebuild of 5,000 rows costs ~0.3 s).
            if self._filter_timer is not None:
                self._filter_timer.stop()
            if len(self.table.model) <= FILTER_NOW:
                self._apply_filter(event.value)
            else:
                self._filter_timer = self.set_timer(
                    FILTER_DEBOUNCE, lambda v=event.value: self._apply_filter(v)
                )

    def _apply_filter(self, text: str) -> None:
        self._filter_timer = None
        self.table.set_filter(text)
        self._show_scope()

    async def on_command_bar_done(self, event: CommandBar.Done) -> None:
        self.table.focus()
        if event.cancelled:
            if event.mode == "/":
                self.table.set_filter("")
                self._show_scope()
            return
        if event.mode == "/":
            v = event.value.strip()
            if v.startswith("-l"):
                self.table.set_filter("")
                await self.switch(scope=self.scope.with_(label_selector=v[2:].strip() or None))
            return
        await self.run_command(event.value)

    async def run_command(self, text: str) -> None:
        """One ``:`` command: a kind, ``ns NAME``, ``tenant NAME``, ``capacity``, ``xray``, ``q``."""
        words = text.split()
        if not words:
            return
        head, arg = words[0].lower(), words[1] if len(words) > 1 else None
        if head in ("q", "q!", "quit"):
            self.app.exit()
        elif head in ("ns", "namespace") and arg:
            await self.switch(scope=self.scope.with_(namespace=None if arg == ALL else arg))
        elif head in ("tenant", "te") and arg:
            await self.set_tenant(arg)
        elif head in ("capacity", "cap", "top"):
            self.action_capacity()
        elif head in ("xray", "topology"):
            self.action_xray()
        elif head in ("help", "h"):
            self.action_help()
        else:
            kind = self.catalog.resolve(head)
            if kind is None:  # maybe a kind the server learned since we started
                self.catalog = await discover(self.tui.session.client)
                kind = self.catalog.resolve(head)
            if kind is None:
                self.status.message = f'the server doesn\'t have a resource type "{head}"'
                return
            await self.switch(kind, self.scope.with_(label_selector=None))

    async def set_tenant(self, tenant: str) -> None:
        if not self.tui.session.admin and tenant != (self.tui.session.config.tenant or tenant):
            self.status.message = "only system administrators can switch tenants"
            return
        await self.switch(scope=self.scope.with_(tenant=tenant))

    def action_clear(self) -> None:
        if self.table.filter_text:
            self.table.set_filter("")
            self._show_scope()
        elif self.scope.label_selector:
            self.run_worker(self.switch(scope=self.scope.with_(label_selector=None)))

    # ------------------------------------------------------------------ navigation
    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(HELP_KEYS))

    @work(group="choose")
    async def action_kinds(self) -> None:
        names = [k.plural if not k.group else f"{k.plural}.{k.group}" for k in self.catalog.kinds]
        chosen = await self.app.push_screen_wait(
            ChooserScreen("kind", names, self.kind.plural if self.kind else None)
        )
        if chosen:
            await self.run_command(chosen)

    @work(group="choose")
    async def action_tenant(self) -> None:
        s = self.tui.session
        if not s.admin:
            self.status.message = "only system administrators can switch tenants"
            return
        chosen = await self.app.push_screen_wait(
            ChooserScreen("tenant", await s.tenants(), self.scope.tenant)
        )
        if chosen:
            await self.set_tenant(chosen)

    @work(group="choose")
    async def action_namespace(self) -> None:
        try:
            names = await self.tui.session.namespaces(self.scope.tenant)
        except (ApiError, ConnectionError) as e:
            self.status.message = f"cannot list namespaces: {e}"
            return
        chosen = await self.app.push_screen_wait(
            ChooserScreen("namespace", names, self.scope.namespace or ALL)
        )
        if chosen:
            await self.switch(scope=self.scope.with_(namespace=None if chosen == ALL else chosen))

    async def action_all_namespaces(self) -> None:
        await self.switch(scope=self.scope.with_(namespace=None))

    def action_sort_next(self) -> None:
        col = -1 if self.table.sort_column is None else self.table.sort_column
        self.table.sort_by(col + 1, reverse=False)

    def action_sort_reverse(self) -> None:
        self.table.sort_by(self.table.sort_column or 0, reverse=not self.table.sort_reverse)

    def action_capacity(self) -> None:
        self.app.push_screen(CapacityScreen(self.tui.session.client, self.tui.session.admin))

    def action_xray(self) -> None:
        self.app.push_screen(
            TopologyScreen(self.tui.session.client, self.tui.session.admin, self.scope.tenant)
        )

    # ------------------------------------------------------------------ views of the selected object
    def _selected(self, *want: str) -> dict[str, Any] | None:
        obj = self.table.selected()
        if obj is None or self.kind is None:
            self.status.message = "nothing selected"
            return None
        if want and self.kind.kind not in want:
            self.status.message = (
                f"not for {self.kind.plural} (only {', '.join(w.lower() + 's' for w in want)})"
            )
            return None
        return obj

    def action_describe(self) -> None:
        self._detail("describe")

    def action_yaml(self) -> None:
        self._detail("yaml")

    def _detail(self, mode: str) -> None:
        obj = self._selected()
        if obj is not None and self.kind is not None:
            self.app.push_screen(DetailScreen(self.tui.session.client, self.kind, obj, mode, self.tui.clock))

    @work(group="choose")
    async def action_logs(self) -> None:
        obj = self._selected("Pod")
        if obj is None:
            return
        md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        names = [str(c.get("name")) for c in spec.get("containers") or [] if isinstance(c, dict)]
        container = names[0] if len(names) == 1 else None
        if len(names) > 1:
            container = await self.app.push_screen_wait(ChooserScreen("container", names))
            if container is None:
                return
        self.app.push_screen(
            LogScreen(
                self.tui.session.client, str(md.get("name")), md.get("namespace"), md.get("tenant"), container
            )
        )

    # ------------------------------------------------------------------ actions
    async def _do(self, question: str | None, call: Awaitable[str]) -> None:
        """Ask ``question`` (None: ask nothing), then run ``call`` and show its outcome."""
        if question is not None and not await self.app.push_screen_wait(ConfirmScreen(question)):
            call.close()  # type: ignore[attr-defined]
            self.status.message = "cancelled"
            return
        try:
            self.status.message = await call
        except (ApiError, ConnectionError, ValueError) as e:
            self.status.message = f"error: {e}"

    @work(group="action")
    async def action_delete(self) -> None:
        obj = self._selected()
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            await self._do(f"Delete {actions.label(k, obj)}?", actions.delete(c, k, obj))

    @work(group="action")
    async def action_scale(self) -> None:
        obj = self._selected(*actions.SCALABLE)
        if obj is None or self.kind is None:
            return
        current = str((obj.get("spec") or {}).get("replicas", 1))
        answer = await self.app.push_screen_wait(
            PromptScreen(f"Scale {actions.label(self.kind, obj)} to:", current)
        )
        if answer is None:
            return
        try:
            n = int(answer)
        except ValueError:
            self.status.message = f"error: {answer!r} is not a number of replicas"
            return
        c, k = self.tui.session.client, self.kind
        await self._do(f"Scale {actions.label(k, obj)} from {current} to {n}?", actions.scale(c, k, obj, n))

    @work(group="action")
    async def action_restart(self) -> None:
        obj = self._selected("Deployment")
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            await self._do(
                f"Restart every pod of {actions.label(k, obj)}?", actions.rollout_restart(c, k, obj)
            )

    @work(group="action")
    async def action_undo(self) -> None:
        obj = self._selected("Deployment")
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            await self._do(f"Roll {actions.label(k, obj)} back?", actions.rollout_undo(c, k, obj))

    @work(group="action")
    async def action_cordon(self) -> None:
        obj = self._selected("Node")
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            await self._do(f"Cordon {actions.label(k, obj)}?", actions.cordon(c, k, obj))

    @work(group="action")
    async def action_uncordon(self) -> None:
        obj = self._selected("Node")
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            await self._do(f"Uncordon {actions.label(k, obj)}?", actions.cordon(c, k, obj, on=False))

    @work(group="action")
    async def action_drain(self) -> None:
        obj = self._selected("Node")
        if obj is not None and self.kind is not None:
            c, k = self.tui.session.client, self.kind
            q = f"Drain {actions.label(k, obj)}: cordon it and delete every pod on it?"
            await self._do(q, actions.drain(c, k, obj))

    @work(group="action")
    async def action_vm_action(self) -> None:
        obj = self._selected("Pod")
        if obj is None or self.kind is None:
            return
        if not actions.is_vm(obj):
            self.status.message = "not a virtual machine pod"
            return
        op = await self.app.push_screen_wait(ChooserScreen("VM action", list(ACTION_OPERATIONS)))
        if op is None:
            return
        snap = None
        if op in ("snapshot", "restore"):
            snap = await self.app.push_screen_wait(PromptScreen(f"{op}: snapshot id", ""))
            if snap is None:
                return
        c, k = self.tui.session.client, self.kind
        q = f"{op.title()} {actions.label(k, obj)}" + (f" ({snap})" if snap else "") + "?"
        await self._do(q, actions.vm_action(c, k, obj, op, snap or None))

    @work(group="action")
    async def action_edit(self) -> None:
        obj = self._selected()
        if obj is None or self.kind is None:
            return
        c, k = self.tui.session.client, self.kind
        md = obj.get("metadata") or {}
        try:
            fresh = await c.get(
                k,
                str(md.get("name")),
                md.get("namespace") if k.namespaced else None,
                md.get("tenant") if k.scope != kinds.CLUSTER else None,
            )
        except (ApiError, ConnectionError) as e:
            self.status.message = f"error: {e}"
            return
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{k.singular}-", delete=False) as f:
            f.write(actions.to_yaml(fresh))
            path = f.name
        try:
            argv = [*shlex.split(os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"), path]
            try:
                with self.app.suspend():
                    rc = subprocess.call(argv)
            except SuspendNotSupported:  # headless (tests): the editor is not interactive
                rc = await asyncio.to_thread(subprocess.call, argv, stdin=subprocess.DEVNULL)
            if rc != 0:
                self.status.message = f"edit cancelled (the editor exited with {rc})"
                return
            with open(path) as f:
                text = f.read()
        finally:
            os.unlink(path)
        await self._do(None, actions.apply_yaml(c, k, fresh, text))
