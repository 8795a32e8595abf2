"""Templates over objects: kubectl's JSONPath and a Go-template subset, for ``get -o``.

``-o jsonpath='{.items[*].metadata.name}'``, ``-o custom-columns=NAME:.metadata.name`` and
``--sort-by=.metadata.creationTimestamp`` read fields with the JSONPath kubectl uses: ``.field``,
``['field']``, ``[n]``, ``[a:b]``, ``[*]`` and ``..`` (recursive), plain text outside braces,
string literals (``{"\\n"}``) and ``{range EXPR}...{end}``. ``-o go-template='{{.metadata.name}}'``
is the same engine with ``{{ }}`` delimiters and Go's ``range``: enough for the usual one-liners
(fields, ``{{range .items}}...{{end}}``, literals); functions and pipelines are refused with one
error line rather than silently printing something else.

Missing fields print nothing (kubectl's ``--allow-missing-template-keys`` default), maps and
lists print as JSON, several results of one expression are separated by a space.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ctl.cli.errors import CLIError

_SEGMENT = re.compile(
    r"""\.\.(?P<rec>[A-Za-z0-9_\-]+|\*)?"""  # ..name: recursive descent
    r"""|\.(?P<field>(?:\\.|[^.\[\\])+)"""  # .name (a backslash escapes a dot)
    r"""|\[(?P<index>[^\]]*)\]"""  # [n] [*] [a:b] ['name']
)


def _path_segments(path: str) -> list[tuple[str, str]]:
    p = path.strip()
    if p.startswith(("$", "@")):
        p = p[1:]
    if p in ("", "."):
        return []
    if not p.startswith((".", "[")):
        p = "." + p
    segs: list[tuple[str, str]] = []
    pos = 0
    while pos < len(p):
        m = _SEGMENT.match(p, pos)
        if not m:
            raise CLIError(f"unrecognized identifier in JSONPath {path!r} at {p[pos:]!r}")
        if m.group(0).startswith(".."):
            segs.append(("rec", m.group("rec") or "*"))
        elif m.group("field") is not None:
            segs.append(("field", m.group("field").replace("\\.", ".")))
        else:
            segs.append(("index", m.group("index").strip()))
        pos = m.end()
    return segs


def _children(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return list(v.values())
    if isinstance(v, list):
        return list(v)
    return []


def _descend(v: Any) -> list[Any]:
    out = [v]
    for c in _children(v):
        out += _descend(c)
    return out


def _index(v: Any, idx: str) -> list[Any]:
    if idx == "*":
        return _children(v)
    if idx.startswith(("'", '"')) and idx.endswith(idx[0]) and len(idx) >= 2:
        return [v[idx[1:-1]]] if isinstance(v, dict) and idx[1:-1] in v else []
    if not isinstance(v, list):
        return []
    try:
        if ":" in idx:
            a, _, b = idx.partition(":")
            return v[int(a) if a else None : int(b) if b else None]
        i = int(idx)
    except ValueError:
        raise CLIError(f"unsupported JSONPath subscript [{idx}]") from None
    return [v[i]] if -len(v) <= i < len(v) else []


def select(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` reaches in ``obj`` (none when a field is missing)."""
    vals = [obj]
    for kind, arg in _path_segments(path):
        nxt: list[Any] = []
        for v in vals:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                nxt += _index(v, arg)
            else:
                for d in _descend(v):
                    nxt += (
                        _children(d) if arg == "*" else ([d[arg]] if isinstance(d, dict) and arg in d else [])
                    )
        vals = nxt
    return vals


def show(v: Any) -> str:
    """A selected value as printed: scalars as they are, maps and lists as JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, separators=(",", ":"))


def _tokens(template: str, open_: str, close: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while True:
        i = template.find(open_, pos)
        if i < 0:
            if template[pos:]:
                out.append(("text", template[pos:]))
            return out
        if i > pos:
            out.append(("text", template[pos:i]))
        j = template.find(close, i + len(open_))
        if j < 0:
            raise CLIError(f"unclosed action in template {template!r}: missing {close!r}")
        out.append(("expr", template[i + len(open_) : j].strip()))
        pos = j + len(close)


def _literal(expr: str) -> str | None:
    if len(expr) >= 2 and expr[0] == expr[-1] and expr[0] in "\"'`":
        body = expr[1:-1]
        return body if expr[0] == "`" else body.encode().decode("unicode_escape")
    return None


def render(template: str, obj: Any, go: bool = False) -> str:
    """``template`` (JSONPath, or a Go template when ``go``) filled in from ``obj``."""
    toks = _tokens(template, "{{", "}}") if go else _tokens(template, "{", "}")
    out: list[str] = []

    def run(i: int, cur: Any, emit: bool) -> int:
        """Render tokens from ``i`` until the matching ``end``; return the index after it."""
        while i < len(toks):
            kind, s = toks[i]
            if kind == "text":
                if emit:
                    out.append(s)
                i += 1
                continue
            if s == "end":
                return i + 1
            if s.startswith("range "):
                items = select(cur, s[6:])
                if go and len(items) == 1 and isinstance(items[0], (list, dict)):
                    items = _children(items[0])
                body = i + 1
                nxt = run(body, cur, False)  # skip the body once to find its end
                for it in items if emit else []:
                    run(body, it, True)
                i = nxt
                continue
            lit = _literal(s)
            if lit is not None:
                if emit:
                    out.append(lit)
            elif go and not s.startswith("."):
                raise CLIError(f"unsupported go-template action {{{{{s}}}}}: only fields, range and literals")
            elif emit:
                vals = select(cur, s)
                out.append(" ".join(show(v) for v in vals) if vals or not go else "<no value>")
            i += 1
        return i

    run(0, obj, True)
    return "".join(out)


def custom_columns(spec: str) -> list[tuple[str, str]]:
    """``NAME:.metadata.name,IMAGE:.spec.containers[*].image`` as (header, path) pairs."""
    cols = []
    for part in spec.split(","):
        head, sep, path = part.partition(":")
        if not sep or not head or not path:
            raise CLIError(
                f"custom-columns format specified but no custom columns given in {part!r}: use NAME:.path"
            )
        cols.append((head, path.strip().removeprefix("{").removesuffix("}")))
    return cols


def sort_key(path: str) -> Any:
    """A key function ordering objects by the value at ``path`` (numbers before text, missing first)."""
    p = path.strip().removeprefix("{").removesuffix("}")

    def key(obj: Any) -> tuple[int, float, str]:
        vals = select(obj, p)
        if not vals:
            return (0, 0.0, "")
        v = vals[0]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return (1, float(v), "")
        return (2, 0.0, show(v))

    return key
