"""A one-line usage bar: ``██████░░░░  62% 2.5/4.0``, coloured by how full it is (red past 90%)."""

from __future__ import annotations

from rich.text import Text

WIDTH = 10


def usage_bar(label: str, used: float, capacity: float, shown: str, width: int = WIDTH) -> Text:
    """The bar of ``used`` out of ``capacity`` (``shown`` is the human-readable "used/capacity")."""
    frac = 0.0 if capacity <= 0 else used / capacity
    filled = min(width, round(frac * width))
    style = "green" if frac < 0.7 else "yellow" if frac < 0.9 else "red"
    t = Text(f"{label} " if label else "")
    t.append("█" * filled, style=style)
    t.append("░" * (width - filled), style="grey50")
    pct = f"{frac * 100:4.0f}%" if capacity > 0 else "   -"
    t.append(f" {pct} {shown}")
    return t
