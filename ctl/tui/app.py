"""The Textual application of ``centaurusctl tui``.

:class:`CentaurusApp` holds the :class:`~ctl.tui.data.session.Session` (client, connection
monitor) and the injected ``clock`` every age is rendered from, and opens on the
:class:`~ctl.tui.screens.resources.ResourcesScreen`. Warnings the client library logs
(an informer retrying, a watch failing) go to the status line instead of the terminal, which
belongs to the TUI while it runs. Closing the app stops every feed and closes the clients.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from textual.app import App

from ctl.client import ClientConfig
from ctl.tui.data.rows import Clock, system_clock
from ctl.tui.data.session import Session
from ctl.tui.screens.resources import ResourcesScreen
from ctl.tui.widgets.status_line import StatusLine


class _ToStatusLine(logging.Handler):
    """Client warnings into the status line (only those logged on the app's own thread)."""

    def __init__(self, app: CentaurusApp) -> None:
        super().__init__(logging.WARNING)
        self.app = app
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() != self.thread:
            return
        try:
            self.app.main.query_one(StatusLine).message = record.getMessage()[:200]
        except Exception:  # no screen yet, or shutting down: the message is dropped
            pass


class CentaurusApp(App[None]):
    CSS_PATH = str(Path(__file__).with_name("centaurus.tcss"))
    TITLE = "centaurus"

    def __init__(
        self,
        config: ClientConfig,
        kind: str = "pods",
        clock: Clock = system_clock,
        tick: float = 2.0,
        monitor_interval: float = 1.0,
    ) -> None:
        super().__init__()
        self.session = Session(config)
        self.initial_kind = kind
        self.clock = clock
        self.tick = tick
        self.monitor_interval = monitor_interval
        self._log_handler = _ToStatusLine(self)
        self.main = ResourcesScreen()

    def on_mount(self) -> None:
        logging.getLogger("centaurus").addHandler(self._log_handler)
        self.push_screen(self.main)

    async def on_unmount(self) -> None:
        logging.getLogger("centaurus").removeHandler(self._log_handler)
        await self.session.close()
