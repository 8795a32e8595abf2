"""Client side of the XDP data plane: the transit daemon's RPC client and the packet tools.

``client`` speaks HTTP/JSON to a transit daemon over its Unix socket (or TCP); ``geneve``
builds and decodes Centaurus Geneve packets with scapy (the option layout of bpf/README.md);
``flowhash`` mirrors the programs' bouncer/divider choice so the trace tool can predict hops.
Nothing here imports ``agent``.
"""
