"""The network view (``:xray``): VPC -> subnets -> endpoints, with bouncers, dividers and hosts.

Six feeds (VPCs, Subnets, Endpoints, Bouncers, Dividers, Droplets of the mizar.centaurus.io
group, across tenants for a system admin) keep the objects; any change rebuilds the tree from
them (:func:`ctl.tui.data.network.topology`) on the next turn of the message loop, keeping
which VPCs and subnets were expanded.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, Tree
from textual.widgets.tree import TreeNode

from ctl.client import Client
from ctl.tui.data import network as NW
from ctl.tui.data.feed import Feed
from ctl.tui.data.session import ALL, Scope
from ctl.types import kinds


class TopologyScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, client: Client, admin: bool, tenant: str | None) -> None:
        super().__init__()
        self.client = client
        self.scope = Scope(tenant=ALL if admin else tenant)
        self.feeds: dict[str, Feed] = {}
        self._scheduled = False
        self.collapsed: set[str] = set()

    def compose(self) -> ComposeResult:
        yield Static(" NETWORK  VPC -> subnets -> endpoints  (enter expands/collapses, esc back)", id="title")
        yield Tree("network", id="topology")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Tree).show_root = False
        for plural in NW.KINDS:
            k = kinds.by_resource("mizar.centaurus.io/v1", plural)
            if k is not None:
                self.feeds[plural] = Feed(self.client, k, self.scope, self._changed)
                self.feeds[plural].start()
        self._rebuild()

    async def on_unmount(self) -> None:
        for f in self.feeds.values():
            await f.stop()

    def _changed(self, key: str, obj: dict[str, Any] | None) -> None:
        if not self._scheduled:
            self._scheduled = True
            self.call_later(self._rebuild)

    def forest(self) -> list[NW.Node]:
        return NW.topology({k: f.objects() for k, f in self.feeds.items()})

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[None]) -> None:
        self.collapsed.add(str(event.node.label).split("  ")[0])

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[None]) -> None:
        self.collapsed.discard(str(event.node.label).split("  ")[0])

    def _rebuild(self) -> None:
        self._scheduled = False
        tree: Tree[None] = self.query_one(Tree)
        tree.clear()

        def add(parent: TreeNode[None], n: NW.Node) -> None:
            if n.children:
                child = parent.add(n.label, expand=n.label.split("  ")[0] not in self.collapsed)
                for c in n.children:
                    add(child, c)
            else:
                parent.add_leaf(n.label)

        forest = self.forest()
        for n in forest:
            add(tree.root, n)
        if not forest:
            tree.root.add_leaf("no VPCs yet")
