"""The operations of the ``Action`` kind (VM power and snapshot actions), declared once.

The API server's Action endpoint, the kind's validation and the node agent that carries an
Action out all read :data:`ACTION_OPERATIONS`; adding an operation here is what makes it
accepted everywhere (the agent must also implement it).
"""

from __future__ import annotations

ACTION_OPERATIONS: tuple[str, ...] = ("reboot", "snapshot", "restore", "stop", "start")
