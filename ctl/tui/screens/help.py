"""``?``: every key the TUI answers to, and the ``:`` commands, in one table."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

COMMANDS = [
    (":KIND", "jump to a kind (plural, singular, short name, kind or plural.group)"),
    (":ns NAME | :ns all", "switch namespace"),
    (":tenant NAME | :tenant all", "switch tenant (all: system admins)"),
    (":capacity", "node view: capacity and allocation per node"),
    (":xray", "network view: VPC -> subnets -> endpoints"),
    ("/TEXT", "filter rows as you type (Escape clears)"),
    ("/-l SELECTOR", "label selector, applied by the server"),
    (":q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = keys

    def compose(self) -> ComposeResult:
        t = Table(title="centaurusctl tui - keys", expand=True, show_edge=False)
        t.add_column("key", style="bold cyan", no_wrap=True)
        t.add_column("does")
        for k, d in self.keys:
            t.add_row(k, d)
        t.add_section()
        for k, d in COMMANDS:
            t.add_row(k, d)
        with VerticalScroll(id="dialog"):
            yield Static(t)

    def action_close(self) -> None:
        self.dismiss(None)
