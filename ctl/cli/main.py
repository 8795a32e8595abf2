"""Entry point of ``centaurusctl``: assembles the command groups.

Each group lives in its own ``*_cmd.py`` module exposing a Typer ``app`` (or plain
commands registered on the root). ``main`` turns every :class:`CLIError`, client
error and configuration error into one line on stderr and exit code 1.
"""

from __future__ import annotations

import sys

import typer

from ctl.cli import image_cmd, serve_cmd
from ctl.cli.errors import CLIError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Centaurus cloud platform toolchain.",
    pretty_exceptions_enable=False,
)
app.add_typer(image_cmd.app, name="image")
serve_cmd.register(app)


def _register_optional() -> None:
    """Command groups that other layers contribute, registered when present."""
    import importlib

    for mod, name in (
        ("ctl.cli.resources_cmd", None),
        ("ctl.cli.config_cmd", "config"),
        ("ctl.cli.cluster_cmd", None),
        ("ctl.cli.workload_cmd", None),
        ("ctl.cli.tenant_cmd", None),
        ("ctl.cli.vm_cmd", "vm"),
        ("ctl.cli.transit_cmd", "transit"),
        ("ctl.cli.packet_cmd", "packet"),
        ("ctl.cli.tui_cmd", None),
        ("ctl.cli.completion_cmd", None),
    ):
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        if name:
            app.add_typer(m.app, name=name)
        else:
            m.register(app)


_register_optional()


def main() -> None:
    from ctl.client import ApiError, ConfigError

    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except ApiError as e:
        print(f"Error from server ({e.reason or e.code}): {e}", file=sys.stderr)
        sys.exit(1)
    except (ConfigError, ConnectionError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # usage errors and the like
        show = getattr(e, "show", None)
        code = getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            sys.exit(1 if code == 2 else code)
        if isinstance(code, int):
            sys.exit(code)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
