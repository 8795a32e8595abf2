"""Small process and asyncio utilities shared by every layer.

``ctl.util`` sits at the bottom of the tree beside :mod:`ctl.types`: it imports only the
standard library (and ``uvloop`` when it is installed), so the CLI, the control-plane roles
and the host-side roles in ``agent/`` may all use it. What lives here is the plumbing that
each daemon and runtime would otherwise write again: whether a pid is alive
(:mod:`ctl.util.procs`), cancelling tasks and waiting for them (:mod:`ctl.util.tasks`) and
the common entry point of a role process (:mod:`ctl.util.daemon`).
"""
