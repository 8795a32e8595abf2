"""``centaurusctl image``: manage the local image store that node agents run containers from.

Commands: ``import PATH [--name N:T]`` (OCI layout dir/tar or docker-save tar), ``list`` (``-o
table|json|yaml``), ``remove REF`` and ``build-defaults`` (the busybox container image and, when the
VM image builder is present, the default VM images). The store lives in ``DATA_DIR/images``;
``--data-dir`` on the group or ``CENTAURUS_DATA_DIR`` picks ``DATA_DIR`` (default ``~/.centaurus``).

Errors are raised as :class:`~ctl.cli.errors.CLIError` with a one-line message; ``ctl.cli.main``
prints it on stderr and exits 1.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from ctl.cli.errors import CLIError
from ctl.cli.output import DATA_FORMATS, check_format, dump, output_option
from ctl.images.store import ImageError, ImageStore, default_data_dir

app = typer.Typer(no_args_is_help=True, help="Manage the local container and VM image store.")

_state: dict[str, Any] = {"data_dir": None}

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(fn: F) -> F:
    """Turn store and OS errors into a one-line :class:`CLIError` (``main`` prints it and exits 1)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ImageError, OSError) as e:
            msg = str(e).splitlines()[0] if str(e) else e.__class__.__name__
            raise CLIError(msg) from None

    return wrapper  # type: ignore[return-value]


def _store() -> ImageStore:
    return ImageStore(_state["data_dir"] or default_data_dir())


@app.callback()
def _group(
    data_dir: Path | None = typer.Option(
        None, "--data-dir", envvar="CENTAURUS_DATA_DIR", help="Data directory (default ~/.centaurus)."
    ),
) -> None:
    _state["data_dir"] = data_dir


@app.command("import")
@_one_line_errors
def import_(
    path: Path = typer.Argument(..., help="OCI layout directory, OCI layout tarball or docker-save tarball."),
    name: str | None = typer.Option(None, "--name", "-n", help="Name the image NAME:TAG."),
) -> None:
    """Import an image into the local store."""
    for rec in _store().import_path(path, name=name):
        print(f"imported {rec.familiar} {rec.digest}")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1000
    return f"{n}B"


@app.command("list")
@_one_line_errors
def list_(output: str = output_option(DATA_FORMATS)) -> None:
    """List images in the local store."""
    check_format(output, DATA_FORMATS)
    recs = _store().images()
    items = [r.to_dict() for r in recs]
    if output != "table":
        print(dump(items, output), end="")
    else:
        rows = [("NAME", "IMAGE ID", "SIZE", "LAYERS")]
        rows += [(r.familiar, r.id, _human(r.size), str(len(r.layers))) for r in recs]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@app.command("remove")
@_one_line_errors
def remove(
    ref: str = typer.Argument(..., help="Image name, digest or ID prefix."),
    force: bool = typer.Option(False, "--force", "-f", help="Remove even if containers use it."),
) -> None:
    """Remove an image from the local store."""
    for n in _store().remove(ref, force=force):
        print(f"removed {n}")


@app.command("build-defaults")
@_one_line_errors
def build_defaults() -> None:
    """Build the default images (busybox:latest, and the VM images when supported). Idempotent."""
    from ctl.images.busybox import build_busybox_image

    store = _store()
    rec = build_busybox_image(store)
    print(f"built {rec.familiar} {rec.digest}")
    try:
        vm = importlib.import_module("ctl.images.vm_image")
    except ModuleNotFoundError as e:
        if e.name != "ctl.images.vm_image":
            raise CLIError(f"VM image builder cannot be loaded: {e}") from None
        return
    fn = getattr(vm, "build_default_vm_images", None)
    if fn is not None:
        result = fn(store.data_dir)
        if result:
            for item in result if isinstance(result, list | tuple) else [result]:
                print(f"built {item}")
