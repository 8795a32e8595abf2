"""Entry point of ``centaurusctl``: assembles the command groups."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Centaurus cloud platform toolchain.")


def main() -> None:
    app()
