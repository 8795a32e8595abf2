"""The streaming subresources of pods: ``exec``, ``attach`` and ``portforward``, as kubectl speaks them.

A client upgrades its request to one of the Kubernetes streaming protocols; the API server
terminates that protocol and relays the streams to the node agent running the pod, which always
speaks the same simple WebSocket forms (:mod:`agent.node.streams`, reached at the endpoint the
agent publishes on its Node). So every client variant is translated once, here:

* :mod:`~ctl.apiserver.streaming.spdy` - SPDY/3.1 framing and a server session;
* :mod:`~ctl.apiserver.streaming.transport` - upgrading an aiohttp request to SPDY (a raw 101)
  or to a WebSocket, and SPDY tunnelled inside a WebSocket (kubectl 1.31+ port-forward);
* :mod:`~ctl.apiserver.streaming.remotecommand` - exec and attach: WebSocket channel protocols
  (``v5``/``v4``/``v3``/``v2``/``channel.k8s.io`` and base64) and SPDY streams, to the agent's v5;
* :mod:`~ctl.apiserver.streaming.portforward` - port-forward over SPDY (plain or tunnelled) and
  over WebSocket channels (the Python client), one agent connection per forwarded connection.

The wire vocabulary shared with the agent and the CLI is :mod:`ctl.types.streaming`.
"""
