"""Entry point of ``centaurusctl``: assembles the command groups."""

from __future__ import annotations

import typer

from ctl.cli import image_cmd

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Centaurus cloud platform toolchain.")
app.add_typer(image_cmd.app, name="image")


def main() -> None:
    app()
