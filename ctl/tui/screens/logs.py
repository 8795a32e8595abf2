"""Follow a pod's log: a container's output, or a VM's serial console (same ``pods/NAME/log``).

The stream is :meth:`ctl.client.Client.log_stream` with ``follow``: chunks are appended as
they arrive (split into lines, a partial last line held back until its newline). When the
stream ends (the pod ended) the screen says so; when the connection breaks (the API server
restarted) it reconnects after a second with the last 10 lines; Escape stops following and goes back.
"""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Log, Static

from ctl.client import ApiError, Client


class LogScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back"), Binding("c", "clear", "Clear")]

    def __init__(
        self, client: Client, pod: str, namespace: str | None, tenant: str | None, container: str | None
    ) -> None:
        super().__init__()
        self.client = client
        self.pod, self.namespace, self.tenant, self.container = pod, namespace, tenant, container
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        what = f"pod/{self.pod}" + (f" [{self.container}]" if self.container else "")
        yield Static(f" LOGS  {what}  (following; c clear, esc back)", id="title")
        yield Log(id="log", highlight=False, auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        self.follow()

    def write(self, line: str) -> None:
        self.lines.append(line)
        self.query_one(Log).write_line(line)

    def action_clear(self) -> None:
        self.query_one(Log).clear()

    @work(exclusive=True, group="logs")
    async def follow(self) -> None:
        tail: int | None = None
        while True:
            partial = ""
            try:
                async for chunk in self.client.log_stream(
                    self.pod, self.namespace, self.tenant, self.container, follow=True, tail_lines=tail
                ):
                    text = partial + chunk.decode(errors="replace")
                    *done, partial = text.split("\n")
                    for ln in done:
                        self.write(ln)
                if partial:
                    self.write(partial)
                self.write("--- log stream ended ---")
                return
            except ApiError as e:
                self.write(f"--- {e} ---")
                return
            except ConnectionError as e:
                self.write(f"--- {e}; reconnecting ---")
            tail = 10
            await asyncio.sleep(1.0)
