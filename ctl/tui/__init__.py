"""``centaurusctl tui``: a Textual terminal UI over the API, the place an operator lives day to day.

The package is a layer above the client (import contract in ``.importlinter``: it imports
``ctl.client``, ``ctl.types`` and ``ctl.util``, nothing of the server):

* :mod:`ctl.tui.data` - everything that talks to the API: discovery of the kinds the server
  serves, the connection monitor, live feeds (one :class:`~ctl.client.informer.Informer` per
  view), describe text, the node and network models and the actions (delete, scale, rollout,
  cordon/drain, VM actions, apply an edited YAML). No Textual in there, so it is testable alone.
* :mod:`ctl.tui.widgets` - one widget per module (the live resource table, the status line,
  usage bars, the command/filter bar).
* :mod:`ctl.tui.screens` - one screen per module (resources, describe/YAML, logs, node
  capacity, network topology, help, confirm, prompt, chooser).
* :mod:`ctl.tui.app` - the :class:`~ctl.tui.app.CentaurusApp` that ties them together, with
  ``centaurus.tcss`` as its stylesheet.

Time is injected (``clock``) everywhere ages are rendered, so snapshot tests are deterministic.
"""
