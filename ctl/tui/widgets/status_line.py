"""The status line: connection state, what is shown, and the last message, on one line.

``connection`` is set from the session's monitor (green when up, red with the error while
the API server cannot be reached; the feeds reconnect by themselves and the line turns
green again); ``scope`` says context, tenant, namespace, kind, selector and filter; ``message``
is the outcome of the last action or a warning the client logged.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusLine(Static):
    up: reactive[bool] = reactive(False)
    connection: reactive[str] = reactive("connecting")
    scope: reactive[str] = reactive("")
    message: reactive[str] = reactive("")
    counts: reactive[str] = reactive("")

    def render(self) -> Text:
        t = Text()
        t.append(" ● " if self.up else " ○ ", style="bold green" if self.up else "bold red")
        t.append(self.connection, style="green" if self.up else "red")
        if self.scope:
            t.append("  │ " + self.scope, style="bold")
        if self.counts:
            t.append("  │ " + self.counts)
        if self.message:
            t.append("  │ " + self.message, style="yellow")
        return t
