"""``centaurusctl serve ROLE --help`` in the same dress as every other command's help.

Each role parses its own flags with argparse (``run(argv) -> int``, see :mod:`ctl.cli.serve_cmd`),
so its help used to be argparse's plain ``usage: ...`` text, unlike the rest of the CLI. While
:func:`rich_role_help` is active, an argparse parser asked for its help renders it as Typer
does: a Usage line, the description, and an Options panel (flag, value type, help, default).
The roles themselves are untouched: the hook is ``ArgumentParser.print_help``, swapped in only
around a ``serve ROLE --help`` run.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import IO

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


def render(parser: argparse.ArgumentParser, console: Console) -> None:
    """Print ``parser``'s help as a Typer command's help looks."""
    console.print()
    console.print(Text.assemble(" Usage: ", (f"{parser.prog} [OPTIONS]", "bold")))
    if parser.description:
        console.print()
        console.print(Text(" " + parser.description.strip()))
    table = Table(show_header=False, box=None, padding=(0, 1), expand=True)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(style="bold green", no_wrap=True)
    table.add_column(style="yellow", max_width=24, overflow="fold")
    table.add_column(ratio=1, min_width=30)
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        longs = ",".join(o for o in action.option_strings if o.startswith("--"))
        shorts = ",".join(o for o in action.option_strings if not o.startswith("--"))
        takes_value = action.nargs != 0
        metavar = ""
        if takes_value:
            if action.choices:
                metavar = "[" + "|".join(str(c) for c in action.choices) + "]"
            else:
                metavar = f"<{getattr(action.type, '__name__', None) or 'str'}>"
        help_ = (action.help or "").replace("%(default)s", str(action.default)).replace("%%", "%")
        if takes_value and action.default not in (None, "", [], argparse.SUPPRESS) and "default" not in help_:
            help_ += f" [default: {action.default}]"
        table.add_row(longs or shorts, shorts if longs else "", metavar, help_)
    console.print(Panel(Group(table), title="Options", title_align="left", border_style="dim"))


@contextlib.contextmanager
def rich_role_help() -> Iterator[None]:
    """Within the block, argparse help (``-h``/``--help`` of a role) is printed the Typer way."""
    original = argparse.ArgumentParser.print_help

    def print_help(self: argparse.ArgumentParser, file: IO[str] | None = None) -> None:
        render(self, Console(file=file) if file is not None else Console())

    argparse.ArgumentParser.print_help = print_help  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        argparse.ArgumentParser.print_help = original  # type: ignore[method-assign]
