"""CLI error type: every user-facing failure is one line on stderr and exit code 1."""

from __future__ import annotations


class CLIError(Exception):
    """Raised by commands; ``main`` prints ``error: <message>`` and exits 1."""
