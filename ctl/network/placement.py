"""Placement of bouncers (per subnet) and dividers (per VPC) on droplets.

:func:`place` is a pure function: it keeps every current placement whose droplet is still
live (so scaling, or another subnet appearing, never moves a bouncer that is fine), drops
placements beyond the wanted count (the most loaded droplets first), and fills the rest
with the least loaded live droplets - load is the number of bouncers and dividers a droplet
already carries - breaking ties by a stable hash of (object, droplet), so subnets spread
over the droplets instead of piling onto the first one and the choice does not depend on
dict order or on which operator instance makes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def _tie(salt: str, droplet: str) -> str:
    return hashlib.sha256(f"{salt}/{droplet}".encode()).hexdigest()


def place(
    count: int,
    current: Iterable[str],
    live: Iterable[str],
    load: dict[str, int],
    salt: str,
) -> list[str]:
    """The droplets for ``count`` replicas of the object ``salt`` (fewer if fewer are live)."""
    live_set = set(live)
    keep = [d for d in dict.fromkeys(current) if d in live_set]
    if len(keep) > count:
        keep.sort(key=lambda d: (-load.get(d, 0), _tie(salt, d)))
        keep = sorted(keep[len(keep) - count :])
    free = sorted((d for d in live_set if d not in keep), key=lambda d: (load.get(d, 0), _tie(salt, d)))
    return keep + free[: max(0, count - len(keep))]
