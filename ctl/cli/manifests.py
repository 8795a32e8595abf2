"""Reading manifests: files, directories (``-R`` to recurse) and stdin; YAML or JSON, multi-document.

Each document becomes one object; ``List`` documents are flattened. Errors name the
file (and document number) and say what is wrong and where (line and column, and for YAML
the construct it happened in), as one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ctl.cli.errors import CLIError

SUFFIXES = {".yaml", ".yml", ".json"}


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if not p.exists():
        raise CLIError(f'the path "{path}" does not exist')
    if p.is_file():
        return [p]
    it = p.rglob("*") if recursive else p.iterdir()
    return sorted(f for f in it if f.is_file() and f.suffix in SUFFIXES)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """What is wrong and where: the problem at its line and column, then what it was inside of.

    PyYAML's own first line is often only the context ("while parsing a block mapping"); the
    problem ("expected <block end>, but found '<block mapping start>'") is what a user needs.
    """
    problem = getattr(e, "problem", None)
    mark = getattr(e, "problem_mark", None)
    if not problem:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    out = problem
    if mark is not None:
        out += f" (line {mark.line + 1}, column {mark.column + 1})"
    context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
    if context:
        out += f", {context}" + (
            f" started at line {cmark.line + 1}, column {cmark.column + 1}" if cmark else ""
        )
    return out


def _parse(text: str, src: str) -> list[dict[str, Any]]:
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            doc = json.loads(text)
            docs = doc if isinstance(doc, list) else [doc]
        else:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except json.JSONDecodeError as e:
        raise CLIError(f"error parsing {src}: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except yaml.YAMLError as e:
        raise CLIError(f"error parsing {src}: {_yaml_problem(e)}") from None
    out: list[dict[str, Any]] = []
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise CLIError(f"error parsing {src}: document {i + 1} is not an object")
        if d.get("kind") == "List" or (
            d.get("kind", "").endswith("List") and isinstance(d.get("items"), list)
        ):
            out.extend(x for x in d["items"] if isinstance(x, dict))
            continue
        if not d.get("apiVersion") or not d.get("kind"):
            raise CLIError(f"error validating {src}: document {i + 1}: apiVersion and kind are required")
        out.append(d)
    return out


def load_manifests(paths: list[str], recursive: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """(source, object) pairs from every path; ``-`` is stdin."""
    out: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        if path == "-":
            out += [("<stdin>", o) for o in _parse(sys.stdin.read(), "<stdin>")]
            continue
        for f in _files(path, recursive):
            try:
                text = f.read_text()
            except (OSError, UnicodeDecodeError) as e:
                raise CLIError(f"cannot read {f}: {e}") from None
            out += [(str(f), o) for o in _parse(text, str(f))]
    if not out:
        raise CLIError(f"no objects passed to apply (looked in {', '.join(paths)})")
    return out
