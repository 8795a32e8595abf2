"""Host-local IP address management: a persisted allocator for one node's pod CIDR.

Like CNI's ``host-local`` plugin: every allocated address is a file ``<dir>/<ip>`` holding the owner
(the pod UID), created with ``O_EXCL`` so two allocators (or agent processes) on one state directory
never hand out the same address. The network address, the gateway (first host address, which the
bridge holds) and the broadcast address are never allocated. Allocation is idempotent per owner: asking
again for the same UID returns the address it already has, so a restarted agent keeps podIPs stable.
Scanning continues after the last handed-out address, so freed addresses are not reused at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from pathlib import Path


class IPAMError(Exception):
    pass


class HostLocalIPAM:
    """Allocates addresses of ``cidr`` to owners, persisted under ``state_dir``."""

    def __init__(self, state_dir: str | os.PathLike[str], cidr: str) -> None:
        try:
            self.network = ipaddress.ip_network(cidr, strict=False)
        except ValueError as e:
            raise IPAMError(f"invalid pod CIDR {cidr!r}: {e}") from None
        if self.network.version != 4 or self.network.prefixlen > 30:
            raise IPAMError(f"pod CIDR {cidr!r} must be IPv4 with at least 4 addresses")
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.gateway = self.network.network_address + 1
        self._index: dict[str, str] | None = None

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen

    def _load(self) -> dict[str, str]:
        if self._index is None:
            idx: dict[str, str] = {}
            for p in self.dir.iterdir():
                if p.name.startswith("."):
                    continue
                with contextlib.suppress(OSError):
                    idx[p.read_text().strip()] = p.name
            self._index = idx
        return self._index

    def lookup(self, owner: str) -> str | None:
        return self._load().get(owner)

    def allocated(self) -> dict[str, str]:
        """owner -> address for every allocation on disk."""
        self._index = None
        return dict(self._load())

    def allocate(self, owner: str) -> str:
        """An address for ``owner`` (the same one if it already has one)."""
        idx = self._load()
        if owner in idx:
            return idx[owner]
        last_file = self.dir / ".last"
        first = int(self.gateway) + 1
        last_addr = int(self.network.broadcast_address) - 1
        try:
            start = int(ipaddress.ip_address(last_file.read_text().strip())) + 1
        except (OSError, ValueError):
            start = first
        if not first <= start <= last_addr:
            start = first
        span = last_addr - first + 1
        for i in range(span):
            cand = first + (start - first + i) % span
            ip = str(ipaddress.ip_address(cand))
            try:
                fd = os.open(self.dir / ip, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(owner)
            last_file.write_text(ip)
            idx[owner] = ip
            return ip
        raise IPAMError(f"pod CIDR {self.network} is exhausted")

    def release(self, owner: str) -> None:
        idx = self._load()
        ip = idx.pop(owner, None)
        if ip is None:
            # maybe allocated by another process since we loaded
            for o, a in self.allocated().items():
                if o == owner:
                    ip = a
        if ip is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.dir / ip)
            if self._index is not None:
                self._index.pop(owner, None)
