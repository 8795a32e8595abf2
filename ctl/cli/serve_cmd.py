"""``centaurusctl serve ROLE [ARGS...]``: run one daemon of the platform in the foreground.

Control-side roles live in ``ctl``; host-side roles (``agent``, ``transitd``) are
found through the ``centaurus.roles`` entry points so that ``ctl`` never imports
``agent``. Every role's entry is ``run(argv) -> int`` and parses its own flags
(``centaurusctl serve ROLE --help``).
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

import typer

from ctl.cli.errors import CLIError

CTL_ROLES = {
    "apiserver": "ctl.apiserver.main:run",
    "scheduler": "ctl.scheduler.main:run",
    "controllers": "ctl.controllers.main:run",
    "netoperator": "ctl.network.main:run",
}


def role_target(role: str) -> str:
    if role in CTL_ROLES:
        return CTL_ROLES[role]
    for ep in entry_points(group="centaurus.roles"):
        if ep.name == role:
            return ep.value
    known = sorted(set(CTL_ROLES) | {ep.name for ep in entry_points(group="centaurus.roles")})
    raise CLIError(f"unknown role {role!r}; roles: {', '.join(known)}")


def run_role(role: str, argv: list[str]) -> int:
    target = role_target(role)
    mod_name, _, fn_name = target.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise CLIError(f"role {role!r} is not available in this installation ({e})") from None
    rc: int = getattr(mod, fn_name)(argv)
    return rc or 0


app = typer.Typer()


@app.command(
    "serve",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    help="Run a daemon role: apiserver, scheduler, controllers, agent, transitd, agent-cleanup.",
)
def serve(ctx: typer.Context, role: str = typer.Argument(..., help="the role to run")) -> None:
    if role in ("--help", "-h"):  # help options are off so that `serve ROLE --help` reaches the role
        typer.echo(ctx.get_help())
        raise typer.Exit(0)
    if {"-h", "--help"} & set(ctx.args):  # the role's own help, dressed as the rest of the CLI's
        from ctl.cli.role_help import rich_role_help

        with rich_role_help():
            sys.exit(run_role(role, list(ctx.args)))
    sys.exit(run_role(role, list(ctx.args)))
