"""Describe and YAML views of one object, with its Events.

Opened on the selected row with ``d`` (describe) or ``y`` (YAML); the same two keys switch
between the views, ``r`` reads the object again, Escape goes back. The object is read fresh
from the API server when the screen opens (the table's copy may be a moment old), and the
Events are those whose ``involvedObject.uid`` is this object's.
"""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from ctl.client import ApiError, Client
from ctl.tui.data import actions
from ctl.tui.data import describe as D
from ctl.tui.data.rows import Clock
from ctl.types.kinds import Kind


class DetailScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("d", "show('describe')", "Describe"),
        Binding("y", "show('yaml')", "YAML"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, client: Client, kind: Kind, obj: dict[str, Any], mode: str, clock: Clock) -> None:
        super().__init__()
        self.client = client
        self.kind = kind
        self.obj = obj
        self.mode = mode
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with VerticalScroll(id="body"):
            yield Static(id="content")
        yield Footer()

    def on_mount(self) -> None:
        self.render_view()
        self.action_reload()

    @work(exclusive=True, group="detail")
    async def action_reload(self) -> None:
        md = self.obj.get("metadata") or {}
        ns = md.get("namespace") if self.kind.namespaced else None
        tenant = md.get("tenant") if self.kind.scope != "cluster" else None
        try:
            self.obj = await self.client.get(self.kind, str(md.get("name")), ns, tenant)
        except (ApiError, ConnectionError) as e:
            self.notify(f"cannot read {actions.label(self.kind, self.obj)}: {e}", severity="warning")
        self.events = await D.events_for(self.client, self.kind, self.obj)
        self.loaded = True
        self.render_view()

    def action_show(self, mode: str) -> None:
        self.mode = mode
        self.render_view()

    def text(self) -> str:
        """What the view shows, as plain text (tests read it)."""
        if self.mode == "yaml":
            return actions.to_yaml(self.obj)
        return D.describe(self.kind, self.obj, self.clock) + "\n\n" + D.events_text(self.events, self.clock)

    def render_view(self) -> None:
        self.query_one("#title", Static).update(
            f" {self.mode.upper()}  {actions.label(self.kind, self.obj)}  (d describe, y yaml, r reload, esc back)"
        )
        body = self.text()
        content = self.query_one("#content", Static)
        content.update(
            Syntax(body, "yaml", theme="ansi_dark", word_wrap=True) if self.mode == "yaml" else body
        )
