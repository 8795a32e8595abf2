"""Centaurus control side.

Everything that runs off the host data path lives here: the store (``ctl.store``), the
API server (``ctl.apiserver``), the client library and informers (``ctl.client``), the CLI
(``ctl.cli``), cluster bootstrap and supervision (``ctl.cluster``), the scheduler
(``ctl.scheduler``), the controllers (``ctl.controllers``, ``ctl.tenancy``), the image
stores (``ctl.images``) and the transit-daemon RPC client and packet tools
(``ctl.transit``); ``ctl.types`` and ``ctl.util`` are the shared bottom layer. Network
operators, the router and the TUI are not here yet. Nothing in ``ctl`` imports ``agent``;
host-side roles are reached through the ``centaurus.roles`` entry points declared in
pyproject.toml. The layers are checked by the contracts in ``.importlinter``.
"""

__version__ = "0.1.0"
