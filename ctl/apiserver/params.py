"""Query parameters (and DeleteOptions) parsed strictly, once per request.

:func:`parse_params` turns the query string into a :class:`Params`; a value that is not
what Kubernetes accepts is a 400 ``BadRequest`` Status that names the parameter, never a
500 and never silently something else (a malformed ``labelSelector`` used to match every
object, so a DELETE of a collection with it deleted them all). A request without a query
gets the shared :data:`NO_PARAMS` without any parsing: the hot path (create, get) pays nothing.

* ``labelSelector``: Kubernetes' grammar (``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``,
  ``k notin (a)``, ``k``, ``!k``, terms joined by commas); keys are qualified names
  (``[prefix/]name``), values label values. ``!!!``, ``a=b=c`` or an empty term (``a,,b``)
  are errors.
* ``fieldSelector``: ``field=value``, ``field==value``, ``field!=value`` with ``\\``
  escapes; an unescaped ``=``, ``!`` or ``,`` in a value, an empty term, or a field the
  kind does not support are errors.
* ``limit`` (a non-negative integer), ``continue`` (a token this server issued: checked
  here for shape, by the registry for its prefix and revision), ``resourceVersion``
  (empty or a non-negative integer), ``timeoutSeconds`` (non-negative integer),
  ``gracePeriodSeconds`` (an integer; negative means 1 as in Kubernetes),
  ``propagationPolicy`` (Orphan, Background, Foreground), ``dryRun`` (only ``All``),
  ``fieldManager`` (at most 128 printable characters), ``fieldValidation``
  (Strict, Warn, Ignore), ``watch`` and ``allowWatchBookmarks`` (booleans).

Parameters Kubernetes defines that this server does not act on (``pretty``,
``resourceVersionMatch``, ...) and unknown ones are ignored, as kube-apiserver ignores
unknown parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ctl.apiserver import status as st
from ctl.apiserver.status import APIError
from ctl.types.selectors import FieldSelector, LabelSelector, Requirement

PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")
_INT64 = (-(2**63), 2**63 - 1)
_INT_RE = re.compile(r"[-+]?[0-9]+")

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_KEY = rf"(?:{_DNS_LABEL}(?:\.{_DNS_LABEL})*/)?{_NAME}"
_VALUE = rf"(?:{_NAME})?"
_EXISTS_RE = re.compile(rf"\s*({_KEY})\s*")
_NOT_EXISTS_RE = re.compile(rf"\s*!\s*({_KEY})\s*")
_EQUALITY_RE = re.compile(rf"\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*")
_SET_RE = re.compile(rf"\s*({_KEY})\s+(in|notin)\s*\(([^()]*)\)\s*")
_SET_VALUE_RE = re.compile(rf"\s*({_VALUE})\s*")
_FIELD_RE = re.compile(r"\s*([A-Za-z0-9_.\-]+)\s*(==|!=|=)(.*)", re.DOTALL)


def _bad(param: str, value: str, why: str) -> APIError:
    shown = value if len(value) <= 100 else value[:100] + "..."
    return st.bad_request(f"invalid value {shown!r} for the query parameter {param}: {why}")


def _split_terms(text: str, param: str, parens: bool) -> list[str]:
    """Split at top-level commas (inside parentheses for label sets; ``\\,`` for fields)."""
    terms, depth, cur, esc = [], 0, [], False
    for ch in text:
        if esc:
            cur.append(ch)
            esc = False
            continue
        if ch == "\\" and not parens:
            cur.append(ch)
            esc = True
            continue
        if parens and ch == "(":
            depth += 1
        elif parens and ch == ")":
            depth -= 1
            if depth < 0:
                raise _bad(param, text, "unbalanced parentheses")
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise _bad(param, text, "unbalanced parentheses")
    terms.append("".join(cur))
    for t in terms:
        if not t.strip():
            raise _bad(param, text, "empty requirement (two commas in a row, or one at an end)")
    return terms


def _check_key(key: str, param: str, text: str) -> None:
    prefix, _, name = key.rpartition("/")
    if len(name) > 63 or len(prefix) > 253:
        raise _bad(param, text, f"key {key!r} is too long (name at most 63, prefix at most 253 characters)")


def parse_label_selector(text: str | None, param: str = "labelSelector") -> LabelSelector:
    """A label selector in Kubernetes' string syntax; a 400 naming ``param`` when malformed."""
    if not text:
        return LabelSelector([])
    reqs: list[Requirement] = []
    for term in _split_terms(text, param, parens=True):
        if m := _SET_RE.fullmatch(term):
            key, op, raw_values = m.group(1), m.group(2), m.group(3)
            values = []
            for v in raw_values.split(","):
                vm = _SET_VALUE_RE.fullmatch(v)
                if vm is None or not vm.group(1):
                    raise _bad(param, text, f"invalid value in set {term.strip()!r}")
                values.append(vm.group(1))
            reqs.append(Requirement(key, op, tuple(values)))
        elif m := _EQUALITY_RE.fullmatch(term):
            key, op, value = m.group(1), m.group(2), m.group(3)
            if len(value) > 63:
                raise _bad(param, text, f"value {value[:20]!r}... is longer than 63 characters")
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
        elif m := _NOT_EXISTS_RE.fullmatch(term):
            key = m.group(1)
            reqs.append(Requirement(key, "!"))
        elif m := _EXISTS_RE.fullmatch(term):
            key = m.group(1)
            reqs.append(Requirement(key, "exists"))
        else:
            raise _bad(
                param,
                text,
                f"unable to parse requirement {term.strip()!r}: expected KEY, !KEY, KEY=VALUE, "
                "KEY!=VALUE, KEY in (V1,V2) or KEY notin (V1,V2) with label keys and values",
            )
        _check_key(key, param, text)
    return LabelSelector(reqs)


def _unescape_field_value(value: str, param: str, text: str) -> str:
    out, esc = [], False
    for ch in value:
        if esc:
            if ch not in "\\,=!":
                raise _bad(param, text, f"invalid escape sequence '\\{ch}' in a value")
            out.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch in ",=!":
            raise _bad(param, text, f"unescaped {ch!r} in the value {value!r}; write it as '\\{ch}'")
        else:
            out.append(ch)
    if esc:
        raise _bad(param, text, "a value ends with a lone backslash")
    return "".join(out)


def parse_field_selector(
    text: str | None,
    allowed: Callable[[str], bool] | None = None,
    resource: str = "",
    param: str = "fieldSelector",
) -> FieldSelector:
    """A field selector; ``allowed`` says which field paths the kind (``resource``) supports."""
    if not text:
        return FieldSelector([])
    reqs: list[tuple[str, str, str]] = []
    for term in _split_terms(text, param, parens=False):
        m = _FIELD_RE.fullmatch(term)
        if m is None:
            raise _bad(
                param, text, f"invalid requirement {term.strip()!r}: expected FIELD=VALUE or FIELD!=VALUE"
            )
        key, op, value = m.group(1), m.group(2), m.group(3).strip()
        if allowed is not None and not allowed(key):
            raise st.bad_request(
                f"field label not supported: {key}" + (f" for {resource}" if resource else "")
            )
        reqs.append((key, "!=" if op == "!=" else "=", _unescape_field_value(value, param, text)))
    return FieldSelector(reqs)


def _int(param: str, value: str, minimum: int | None = 0) -> int:
    if not _INT_RE.fullmatch(value.strip()):
        raise _bad(param, value, "must be an integer")
    n = int(value)
    if not _INT64[0] <= n <= _INT64[1]:
        raise _bad(param, value, "out of the 64-bit integer range")
    if minimum is not None and n < minimum:
        raise _bad(param, value, f"must be greater than or equal to {minimum}")
    return n


def _bool(param: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("", "1", "true", "yes"):
        return True
    if v in ("0", "false", "no"):
        return False
    raise _bad(param, value, "must be true or false")


def decode_continue(token: str) -> tuple[str, int]:
    """(key to start after, revision) from a continue token; 400 when it is not one of ours."""
    try:
        c = orjson.loads(bytes.fromhex(token))
    except ValueError:
        c = None
    if (
        not isinstance(c, dict)
        or not isinstance(c.get("k"), str)
        or not isinstance(c.get("r"), int)
        or isinstance(c.get("r"), bool)
        or not 0 < c["r"] < _INT64[1]
    ):
        raise st.bad_request(
            "invalid value for the query parameter continue: not a continue token this server issued; "
            "start the list again without it"
        )
    return c["k"], int(c["r"])


def encode_continue(key: str, revision: int) -> str:
    return orjson.dumps({"k": key, "r": revision}).hex()


@dataclass
class Params:
    """The parsed query parameters of one request (absent ones are None or the default)."""

    label_selector: str | None = None
    field_selector: str | None = None
    limit: int = 0
    cont: str | None = None
    resource_version: str | None = None
    timeout_seconds: int | None = None
    grace_period_seconds: int | None = None
    propagation_policy: str | None = None
    dry_run: bool = False
    field_manager: str | None = None
    field_validation: str | None = None
    watch: bool = False
    allow_watch_bookmarks: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    labels: LabelSelector = field(default_factory=lambda: LabelSelector([]))

    def selectors(
        self, allowed: Callable[[str], bool] | None, resource: str = ""
    ) -> tuple[LabelSelector, FieldSelector]:
        """The label selector (parsed already) and the field selector checked against the kind's fields."""
        return self.labels, parse_field_selector(self.field_selector, allowed, resource)

    def delete_options(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """DeleteOptions from the body (checked) with the query parameters over it."""
        options = check_delete_options(body) if body else {}
        if self.grace_period_seconds is not None:
            options["gracePeriodSeconds"] = self.grace_period_seconds
        if self.propagation_policy is not None:
            options["propagationPolicy"] = self.propagation_policy
        if self.dry_run:
            options["dryRun"] = ["All"]
        return options


NO_PARAMS = Params()


def _dry_run(values: list[str]) -> bool:
    for v in values:
        if v != "All":
            raise _bad("dryRun", v, 'the only supported value is "All"')
    return True


def parse_params(query: Mapping[str, str]) -> Params:
    """Parse the parameters present in ``query`` (a multidict: ``getall`` is used for dryRun)."""
    if not query:
        return NO_PARAMS
    p = Params()
    for name, value in query.items():
        if name == "labelSelector":
            p.label_selector = value
        elif name == "fieldSelector":
            p.field_selector = value
        elif name == "limit":
            p.limit = _int(name, value) if value != "" else 0
        elif name == "continue":
            if value:
                decode_continue(value)
                p.cont = value
        elif name == "resourceVersion":
            if value != "":
                _int(name, value)
            p.resource_version = value
        elif name == "timeoutSeconds":
            p.timeout_seconds = _int(name, value)
        elif name == "gracePeriodSeconds":
            g = _int(name, value, minimum=None)
            p.grace_period_seconds = 1 if g < 0 else g
        elif name == "propagationPolicy":
            if value not in PROPAGATION_POLICIES:
                raise _bad(name, value, f"must be one of {', '.join(PROPAGATION_POLICIES)}")
            p.propagation_policy = value
        elif name == "dryRun":
            getall = getattr(query, "getall", None)
            p.dry_run = _dry_run(getall(name) if getall else [value])
        elif name == "fieldManager":
            if len(value) > 128 or not value.isprintable():
                raise _bad(name, value, "must be at most 128 printable characters")
            p.field_manager = value
        elif name == "fieldValidation":
            if value not in FIELD_VALIDATION:
                raise _bad(name, value, f"must be one of {', '.join(FIELD_VALIDATION)}")
            p.field_validation = value
        elif name == "watch":
            p.watch = _bool(name, value)
        elif name == "allowWatchBookmarks":
            p.allow_watch_bookmarks = _bool(name, value)
        else:
            p.extra[name] = value
    # The field selector is parsed where the kind is known (field labels differ per kind); a
    # malformed label selector is refused here already, whatever the verb.
    if p.label_selector:
        p.labels = parse_label_selector(p.label_selector)
    return p


def check_delete_options(body: Any) -> dict[str, Any]:
    """A DeleteOptions body, its fields type-checked; a 400 naming the bad field."""
    if not isinstance(body, dict):
        raise st.bad_request("DeleteOptions must be a JSON object")
    out = dict(body)
    g = out.get("gracePeriodSeconds")
    if g is not None:
        if not isinstance(g, int) or isinstance(g, bool) or not _INT64[0] <= g <= _INT64[1]:
            raise st.bad_request(f"DeleteOptions.gracePeriodSeconds must be an integer, got {g!r:.50}")
        out["gracePeriodSeconds"] = 1 if g < 0 else g
    pp = out.get("propagationPolicy")
    if pp is not None and pp not in PROPAGATION_POLICIES:
        raise st.bad_request(
            f"DeleteOptions.propagationPolicy must be one of {', '.join(PROPAGATION_POLICIES)}, got {pp!r:.50}"
        )
    od = out.get("orphanDependents")
    if od is not None and not isinstance(od, bool):
        raise st.bad_request("DeleteOptions.orphanDependents must be a boolean")
    dr = out.get("dryRun")
    if dr is not None:
        if not isinstance(dr, list) or any(v != "All" for v in dr):
            raise st.bad_request('DeleteOptions.dryRun must be a list whose only value is "All"')
    pre = out.get("preconditions")
    if pre is not None:
        if not isinstance(pre, dict) or any(
            k not in ("uid", "resourceVersion") or not (v is None or isinstance(v, str))
            for k, v in pre.items()
        ):
            raise st.bad_request(
                "DeleteOptions.preconditions may hold only the strings uid and resourceVersion"
            )
    return out
