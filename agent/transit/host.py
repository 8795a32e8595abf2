"""One host's data plane as the transit daemon sees it: programs, maps, attachments, state.

``TransitHost`` compiles the programs (reusing the pinned maps), writes this host's substrate
identity into the ``config`` map, and implements every RPC operation:

* ``put(kind, objects)`` validates every object (``model``) and checks it against the current
  state (``TransitMaps.check``) before writing anything; an agent entry also attaches
  transit_agent to its veth when the programs are loaded (and is rolled back if that fails).
* ``delete(kind, key)``, ``get``, ``list``, ``counters``, ``dump``, ``status``.
* ``load(mode)`` attaches transit_xdp to the substrate interface and transit_agent to every
  veth with agent metadata; ``unload()`` detaches them (maps stay, pinned).

The little that is not in the maps (whether the programs should be attached, and in which
mode) is kept in ``state.json`` in the state directory; a restarted daemon reads it and
re-attaches its freshly loaded programs, which atomically replaces the previous ones.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from agent.transit import loader, model
from agent.transit.maps import TransitMaps

log = logging.getLogger("transitd")

AGENT_HOOKS = ("xdp", "tc")


class TransitHost:
    def __init__(
        self,
        host: str,
        itf: str,
        *,
        ip: str | None = None,
        mac: str | None = None,
        learn_ttl_s: float = 30.0,
        state_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.itf = itf
        self.pin_dir = loader.pin_dir(host)
        self.state_dir = state_dir or Path("/run/centaurus/transitd") / host
        self.lock = threading.RLock()
        info = loader.interface_info(itf)
        self.ip = model.ipv4(ip or info["ip"], "--ip (substrate address)") if (ip or info["ip"]) else None
        if self.ip is None:
            raise loader.LoaderError(f"substrate interface {itf} has no IPv4 address; pass --ip")
        self.mac = model.mac(mac or info["mac"], "--mac")
        self.itf_index = int(info["ifindex"])
        self.learn_ttl_s = learn_ttl_s
        self.progs = loader.compile_programs(host)
        self.maps = TransitMaps(self.progs)
        self.mtu = int(info.get("mtu") or 0)
        self.maps.set_config(self.ip, self.mac, self.itf_index, learn_ttl_s, self.mtu)
        self.state = self._read_state()
        self.attached: dict[int, str] = {}
        if self.state.get("loaded"):
            log.info("resuming: re-attaching programs (%s mode)", self.state.get("mode"))
            self.load(self.state.get("mode", "auto"))

    # ---- state file ---------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.state_dir / "state.json"

    def _read_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._state_path().read_text()))
        except (OSError, ValueError):
            return {}

    def _write_state(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._state_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self._state_path())

    # ---- programs -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return bool(self.state.get("loaded"))

    @property
    def agent_hook(self) -> str:
        return str(self.state.get("agent_hook", "xdp"))

    def _attach_agent(self, index: int) -> str:
        """Attach the agent program the configured hook asks for (and not the other one)."""
        if self.agent_hook == "tc":
            if loader.xdp_attached(index)["mode"]:
                loader.detach(index)
            return loader.attach_tc(index, self.progs.agent_tc_fd)
        loader.detach_tc(index)
        return loader.attach(index, self.progs.agent_fd, self.state.get("mode", "auto"))

    def _detach_agent(self, index: int) -> None:
        loader.detach(index)
        loader.detach_tc(index)

    def load(self, mode: str = "auto", agent_hook: str | None = None) -> dict[str, Any]:
        with self.lock:
            if mode not in loader.MODES:
                raise model.Invalid(f"mode: {mode!r} is not one of {', '.join(loader.MODES)}")
            hook = agent_hook or self.agent_hook
            if hook not in AGENT_HOOKS:
                raise model.Invalid(f"agent_hook: {hook!r} is not one of {', '.join(AGENT_HOOKS)}")
            self.attached[self.itf_index] = loader.attach(self.itf_index, self.progs.xdp_fd, mode)
            if hook == "tc":  # GSO Geneve from TC agents, passed on by generic-mode XDP
                loader.attach_tc(self.itf_index, self.progs.decap_tc_fd, "transit_decap_tc")
            else:
                loader.detach_tc(self.itf_index)
            self.state.update(mode=mode, agent_hook=hook)
            for a in self.maps.list("agents"):
                try:
                    self.attached[a["ifindex"]] = self._attach_agent(a["ifindex"])
                except loader.LoaderError as e:  # veth gone while we were away
                    log.warning("agent %s: %s", a["veth"], e)
            self.state.update(loaded=True)
            self._write_state()
            return self.status()

    def unload(self) -> dict[str, Any]:
        with self.lock:
            loader.detach(self.itf_index)
            loader.detach_tc(self.itf_index)
            for a in self.maps.list("agents"):
                self._detach_agent(a["ifindex"])
            self.attached.clear()
            self.state.update(loaded=False)
            self._write_state()
            return self.status()

    # ---- objects ------------------------------------------------------------------------------

    def put(self, kind: str, body: Any) -> list[dict[str, Any]]:
        kind = model.kind_name(kind)
        items = body if isinstance(body, list) else [body]
        if not items:
            raise model.Invalid("empty request: give an object or a list of objects")
        parse = model.PARSERS[kind]
        with self.lock:
            parsed = [parse(o) for o in items]
            keys = [model.object_key(kind, o) for o in parsed]
            if len(set(keys)) != len(keys):
                raise model.Invalid(f"{kind}: the same key appears twice in one request")
            batch = [dict(o, _kind=kind) for o in parsed]
            checked = [self.maps.check(kind, o, loader.ifindex_of_checked, batch) for o in parsed]
            done: list[dict[str, Any]] = []
            for o in checked:
                self.maps.put(kind, o)
                if kind == "agents" and self.loaded:
                    try:
                        self.attached[o["ifindex"]] = self._attach_agent(o["ifindex"])
                    except loader.LoaderError as e:
                        for d in [*done, o]:
                            self.maps.delete("agents", d["veth"])
                        raise model.Invalid(f"agent {o['veth']}: {e}") from e
                done.append(o)
            return [self.maps.get(kind, model.parse_key(kind, k)) for k in keys]

    def delete(self, kind: str, key: str) -> dict[str, Any]:
        kind = model.kind_name(kind)
        k = model.parse_key(kind, key)
        with self.lock:
            if kind == "agents":
                o = self.maps.get(kind, k)
                self._detach_agent(o["ifindex"])
                self.attached.pop(o["ifindex"], None)
            return self.maps.delete(kind, k)

    def get(self, kind: str, key: str) -> dict[str, Any]:
        kind = model.kind_name(kind)
        return self.maps.get(kind, model.parse_key(kind, key))

    def list(self, kind: str) -> list[dict[str, Any]]:
        return self.maps.list(model.kind_name(kind))

    def status(self) -> dict[str, Any]:
        names = loader.ifnames()
        progs = []
        watch = {self.itf_index: "transit_xdp"} | {
            a["ifindex"]: "transit_agent" for a in self.maps.list("agents")
        }
        for idx, role in sorted(watch.items()):
            x = loader.xdp_attached(idx)
            if role == "transit_agent" and not x["mode"] and loader.tc_attached(idx):
                x, role = {"mode": "tc", "prog_id": 0}, "transit_agent_tc"
            progs.append(
                {
                    "ifname": names.get(idx),
                    "ifindex": idx,
                    "program": role,
                    "mode": x["mode"],
                    "prog_id": x["prog_id"],
                }
            )
        return {
            "host": self.host,
            "substrate": {"itf": self.itf, "ifindex": self.itf_index, "ip": self.ip, "mac": self.mac},
            "loaded": self.loaded,
            "mode": self.state.get("mode"),
            "agent_hook": self.agent_hook,
            "pin_dir": str(self.pin_dir),
            "learn_ttl_s": self.learn_ttl_s,
            "attachments": progs,
            "objects": {k: len(self.maps.list(k)) for k in model.KINDS}
            | {"learned": len(self.maps.learned())},
            "pid": os.getpid(),
        }
