"""The node view (``:capacity``): every node with bars of its CPU, memory and pod allocation.

Two feeds keep it live: the Nodes, and the Pods of every tenant (a system admin's view;
another caller sees its own tenant's pods only, and the title says so). Allocation sums are
kept per node by :class:`~ctl.tui.data.nodes.Allocation` one pod event at a time; a change
redraws only the rows of the nodes it touched, on the next turn of the message loop.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ctl.client import Client
from ctl.tui.data import nodes as N
from ctl.tui.data.feed import Feed
from ctl.tui.data.session import ALL, Scope
from ctl.tui.widgets.resource_table import widen
from ctl.tui.widgets.usage_bar import usage_bar
from ctl.types import columns, kinds

HEADERS = ("NODE", "STATUS", "CPU", "MEMORY", "PODS")


class CapacityScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, client: Client, admin: bool) -> None:
        super().__init__()
        self.client = client
        self.admin = admin
        self.nodes: dict[str, dict[str, Any]] = {}
        self.alloc = N.Allocation()
        self._dirty: set[str] = set()
        self._scheduled = False
        self.feeds: list[Feed] = []

    def compose(self) -> ComposeResult:
        scope = "all tenants" if self.admin else "your tenant's pods only"
        yield Static(f" NODES  capacity and allocation ({scope}; esc back)", id="title")
        yield DataTable[Any](id="capacity", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for h in HEADERS:
            table.add_column(h, key=h)
        table.focus()
        tenant = ALL if self.admin else None
        self.feeds = [
            Feed(self.client, kinds.resolve("nodes") or kinds.KINDS[0], Scope(), self._on_node),
            Feed(self.client, kinds.resolve("pods") or kinds.KINDS[0], Scope(tenant=tenant), self._on_pod),
        ]
        for f in self.feeds:
            f.start()

    async def on_unmount(self) -> None:
        for f in self.feeds:
            await f.stop()

    def _on_node(self, key: str, obj: dict[str, Any] | None) -> None:
        name = key.rsplit("/", 1)[-1]
        if obj is None:
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = obj
        self._mark(name)

    def _on_pod(self, key: str, obj: dict[str, Any] | None) -> None:
        node = self.alloc.update(key, obj)
        if node is not None:
            self._mark(node)

    def _mark(self, node: str) -> None:
        self._dirty.add(node)
        if not self._scheduled:
            self._scheduled = True
            self.call_later(self._redraw)

    def row(self, name: str) -> tuple[Any, ...]:
        node = self.nodes[name]
        cap, used = N.node_capacity(node), self.alloc.of(name)
        status = columns.cell(dict(columns.COLUMNS["Node"])["STATUS"], node)
        return (
            name,
            Text(status, style="green" if status == "Ready" else "red"),
            usage_bar("", used.cpu, cap.cpu, f"{used.cpu / 1000:.1f}/{cap.cpu / 1000:.1f}"),
            usage_bar(
                "", used.memory, cap.memory, f"{N.human_bytes(used.memory)}/{N.human_bytes(cap.memory)}"
            ),
            usage_bar("", used.pods, cap.pods, f"{used.pods}/{cap.pods}"),
        )

    def _redraw(self) -> None:
        self._scheduled = False
        table = self.query_one(DataTable)
        dirty, self._dirty = self._dirty, set()
        added = False
        for name in dirty:
            present = name in table.rows
            if name not in self.nodes:
                if present:
                    table.remove_row(name)
                continue
            cells = self.row(name)
            if present:
                for h, v in zip(HEADERS, cells, strict=True):
                    widen(table, h, v.cell_len if isinstance(v, Text) else len(v))
                    table.update_cell(name, h, v)
            else:
                table.add_row(*cells, key=name)
                added = True
        if added:
            table.sort("NODE")
