"""The transit daemon (``centaurusctl serve transitd``): owns one host's XDP data plane.

``loader`` compiles bpf/ with bcc and attaches programs (pyroute2), ``model`` validates the RPC
objects, ``maps`` turns them into pinned map entries, ``host`` implements the operations and
resume-after-restart, ``rpc`` serves them as HTTP/JSON, ``daemon`` is the role entry point.
"""
