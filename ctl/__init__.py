"""Centaurus control side.

Everything that runs off the host data path lives here: the store, the API server,
the client library, the CLI, the scheduler, the controllers, the network operators,
the router and the TUI. Nothing in ``ctl`` imports ``agent``; host-side roles are
reached through the ``centaurus.roles`` entry points declared in pyproject.toml.
"""

__version__ = "0.1.0"
