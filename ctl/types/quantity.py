"""Kubernetes resource quantities: one parser for validation, scheduling, quota and runtimes.

A quantity is a signed decimal number followed by a suffix: binary (``Ki Mi Gi Ti Pi Ei``),
decimal SI (``n u m k M G T P E``; note ``k`` is lower case and ``K`` is not a suffix) or a
decimal exponent (``e3``, ``E-2``). Numbers may also come as JSON numbers. The value is kept
as a :class:`~decimal.Decimal` so that ``100m`` CPU and ``1Ei`` bytes are exact;
:func:`quantity_float` is the convenience the hot paths (scheduler, admission) use.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

BINARY_SUFFIXES: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
DECIMAL_SUFFIXES: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}

_QUANTITY = re.compile(
    r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)$"
)
# What Kubernetes prints in its own error for a malformed quantity.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_MAX_LEN = 64


def parse_quantity(q: Any) -> Decimal:
    """``"500m"``, ``"128Mi"``, ``"1e3"``, ``2`` or ``1.5`` as an exact Decimal; ValueError if malformed."""
    if isinstance(q, bool):
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    if isinstance(q, int):
        return Decimal(q)
    if isinstance(q, float):
        if q != q or q in (float("inf"), float("-inf")):
            raise ValueError("quantity must be a finite number")
        return Decimal(str(q))
    if not isinstance(q, str) or not q.strip() or len(q) > _MAX_LEN:
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    m = _QUANTITY.match(q.strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    num, suf = m.group(1), m.group(2)
    try:
        if suf in BINARY_SUFFIXES:
            return Decimal(num) * BINARY_SUFFIXES[suf]
        if len(suf) > 1 and suf[0] in ("e", "E"):
            return Decimal(num + suf)
        return Decimal(num) * DECIMAL_SUFFIXES[suf]
    except (InvalidOperation, KeyError) as e:  # pragma: no cover - the regex admits only valid input
        raise ValueError(f"quantities must match the regular expression '{QUANTITY_PATTERN}'") from e


def quantity_float(q: Any) -> float:
    """:func:`parse_quantity` as a float (for arithmetic on the hot paths)."""
    return float(parse_quantity(q))


def is_quantity(q: Any) -> bool:
    """True if ``q`` parses as a quantity."""
    try:
        parse_quantity(q)
    except ValueError:
        return False
    return True
