"""The command bar: an Input docked at the bottom that ``:`` (commands, kinds) and ``/`` (filter) open.

It posts :class:`CommandBar.Done` with its mode and text on Enter, keeps the filter live on
every keystroke (``Changed`` in ``/`` mode is handled by the screen), and closes on Escape.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class CommandBar(Input):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    class Done(Message):
        def __init__(self, mode: str, value: str, cancelled: bool = False) -> None:
            super().__init__()
            self.mode = mode
            self.value = value
            self.cancelled = cancelled

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode = ":"
        self.display = False

    def open(self, mode: str, value: str = "") -> None:
        self.mode = mode
        self.placeholder = (
            "kind, or ns NAME / tenant NAME / capacity / xray / q"
            if mode == ":"
            else "filter (-l SELECTOR for labels)"
        )
        self.value = value
        self.display = True
        self.focus()

    def close(self) -> None:
        self.display = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close()
        self.post_message(self.Done(self.mode, event.value))

    def action_cancel(self) -> None:
        self.close()
        self.post_message(self.Done(self.mode, self.value, cancelled=True))
