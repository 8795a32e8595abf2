"""Entry point of ``centaurusctl``: assembles the command groups.

Each command (or group of commands) lives in its own ``*_cmd.py`` module exposing a
Typer ``app``: a named group is added under its name (``image``, ``config``, ``create``,
``vm``, ``transit``, ``packet``), a module of top-level commands is merged into the root
(Typer merges an ``app`` added without a name). A few older modules still add their
commands through ``register(app)``. Every module is imported explicitly: a missing one is
an installation error, not a silently absent command. ``main`` turns every
:class:`CLIError`, client error and configuration error into one line on stderr and
exit code 1.

The root callback takes kubectl's global flags before the command (``centaurusctl -n demo
get pods``, ``--context``, ``--kubeconfig``, ``--tenant``) and hands them to the command as
the defaults of its own options (:func:`ctl.cli.common.global_defaults`). Help shows a
value type only for options that take a value (flags are not ``<bool>``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperOption

from ctl.cli import (
    apply_cmd,
    batch_cmd,
    cluster_cmd,
    completion_cmd,
    config_cmd,
    create_cmd,
    delete_cmd,
    describe_cmd,
    get_cmd,
    image_cmd,
    info_cmd,
    label_cmd,
    network_cmd,
    node_cmd,
    packet_cmd,
    pod_cmd,
    serve_cmd,
    tenant_cmd,
    transit_cmd,
    tui_cmd,
    vm_cmd,
    workload_cmd,
)
from ctl.cli.common import global_defaults
from ctl.cli.errors import CLIError
from ctl.cli.examples import add_examples

_value_type = TyperOption.display_type_rich


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """Help shows a value type only for options that take a value (``--watch``, not ``--watch <bool>``)."""
    return None if self.is_flag else _value_type(self, ctx)


TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_flags(
    ctx: typer.Context,
    namespace: str = typer.Option(None, "-n", "--namespace", help="namespace for the command that follows"),
    context: str = typer.Option(None, "--context", help="kubeconfig context for the command that follows"),
    tenant: str = typer.Option(None, "--tenant", help="tenant for the command that follows"),
    kubeconfig: str = typer.Option(None, "--kubeconfig", help="client config for the command that follows"),
) -> None:
    """Centaurus cloud platform toolchain.

    Examples:
      centaurusctl init
      centaurusctl -n demo get pods
      centaurusctl --context admin get nodes -o wide
    """
    values = {
        k: v
        for k, v in (
            ("namespace", namespace),
            ("context", context),
            ("tenant", tenant),
            ("kubeconfig", kubeconfig),
        )
        if v
    }
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # options that read $KUBECONFIG see it too
    if values:
        ctx.default_map = {**(ctx.default_map or {}), **global_defaults(ctx.command, values)}


app.add_typer(image_cmd.app, name="image")
app.add_typer(serve_cmd.app)
# kubectl-style resource commands, in the order `--help` lists them
for module in (apply_cmd, get_cmd, describe_cmd, delete_cmd):
    app.add_typer(module.app)
app.add_typer(create_cmd.app, name="create")
for module in (label_cmd, node_cmd, info_cmd, pod_cmd):
    app.add_typer(module.app)
app.add_typer(config_cmd.app, name="config")
cluster_cmd.register(app)
workload_cmd.register(app)
tenant_cmd.register(app)  # adds `create tenant|token` to the create group and the `token` group
batch_cmd.register(app)  # adds `create job|cronjob`
app.add_typer(vm_cmd.app, name="vm")
app.add_typer(transit_cmd.app, name="transit")
app.add_typer(network_cmd.app, name="network")
app.add_typer(packet_cmd.app, name="packet")
app.add_typer(tui_cmd.app)
completion_cmd.register(app)


# kubectl's spelling of a boolean flag's value, for the flags whose Typer option is --X/--no-X
KUBECTL_BOOLS = {"--wait=false": "--no-wait", "--wait=true": "--wait"}


def kubectl_bools(argv: list[str]) -> list[str]:
    """``--wait=false`` as ``--no-wait`` (before a ``--``: what follows it belongs to a command)."""
    if "--" in argv:
        i = argv.index("--")
        return kubectl_bools(argv[:i]) + argv[i:]
    return [KUBECTL_BOOLS.get(a, a) for a in argv]


def command() -> Any:
    """The Click command tree of the CLI, every command's help with its Examples."""
    import typer.main

    root = typer.main.get_command(app)
    add_examples(root)
    return root


def main() -> None:
    from ctl.client import ApiError, ConfigError

    sys.argv = kubectl_bools(sys.argv)
    try:
        rc = command()(standalone_mode=False)
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
