"""Request bodies decoded so that they cannot be turned against the server.

Every JSON or YAML body goes through :func:`decode_body`, which guarantees that what it
returns is plain JSON data (dicts with string keys, lists, strings, finite numbers that
fit the wire, booleans, None), nested at most :data:`MAX_DEPTH` levels, and no bigger than
the body itself allows. Anything else is an :class:`~ctl.apiserver.status.APIError` 400 -
never a ``RecursionError``, a ``MemoryError`` or a 500 later on.

* **Size**: the HTTP layer caps the body at :data:`MAX_BODY` before it is read (413);
  YAML aliases are limited as Kubernetes' YAML decoder (go-yaml) limits them: every node
  an alias stands for is counted, and a document whose aliases expand far beyond its own
  size ("billion laughs": 464 bytes that expand to 125 MB) is refused as *excessive
  aliasing* while it is being composed, before anything is built.
* **Depth**: JSON and YAML nested deeper than :data:`MAX_DEPTH` are refused (the YAML
  composer is recursive, so the limit is checked as it descends; JSON is checked after
  orjson's C parser, only when the body has enough brackets to be that deep).
* **The JSON-compatible YAML subset**: only the tags JSON has (``!!str``, ``!!int``,
  ``!!float``, ``!!bool``, ``!!null``, ``!!seq``, ``!!map``, and merge keys). Timestamps
  stay the strings they were written as; ``!!set``, ``!!binary``, ``!!omap``,
  ``!!python/...`` and local tags are refused, and so are mapping keys that are not
  strings, ``.inf``/``.nan``, and integers beyond 64 bits become floats as in JSON.

Aliased YAML is rebuilt once through JSON so that no two places of the object share one
Python dict (defaulting one must not change the other); bodies without aliases are
returned as built.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import yaml
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ctl.apiserver import status as st

MAX_BODY = 3 * 1024 * 1024
MAX_DEPTH = 100
# go-yaml's alias budget: documents up to this many decoded nodes may be mostly aliases...
_ALIAS_RANGE_LOW = 400_000
# ... from this many on, at most 10% of the decoded nodes may come from aliases.
_ALIAS_RANGE_HIGH = 4_000_000
_INT64 = 1 << 63

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "application/apply-patch+yaml")


class DecodeError(ValueError):
    """A body that is not acceptable JSON data (the message says why)."""


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_RANGE_LOW:
        return 0.99
    if decoded >= _ALIAS_RANGE_HIGH:
        return 0.10
    span = _ALIAS_RANGE_HIGH - _ALIAS_RANGE_LOW
    return 0.99 - 0.89 * (decoded - _ALIAS_RANGE_LOW) / span


class _Budget:
    """Counts nodes as if every alias were expanded, refusing excessive aliasing and depth."""

    def __init__(self) -> None:
        self.depth = 0
        self.decoded = 0
        self.aliased = 0
        self.sizes: dict[int, int] = {}  # id(anchored node) -> nodes it expands to

    def charge(self, decoded: int, aliased: int) -> None:
        self.decoded += decoded
        self.aliased += aliased
        if (
            self.aliased > 100
            and self.decoded > 1000
            and self.aliased / self.decoded > _allowed_alias_ratio(self.decoded)
        ) or self.decoded > _ALIAS_RANGE_HIGH * 2:
            raise DecodeError("the YAML document contains excessive aliasing")


class _SafeJSONLoader(yaml.SafeLoader):
    """SafeLoader restricted to JSON data, with the alias and depth budget of :class:`_Budget`."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.budget = _Budget()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        b = self.budget
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchor = event.anchor
            if anchor in self.anchors:
                n = b.sizes.get(id(self.anchors[anchor]), 1)
                b.charge(n, n)
            return Composer.compose_node(self, parent, index)
        b.depth += 1
        if b.depth > MAX_DEPTH:
            raise DecodeError(f"the YAML document is nested more than {MAX_DEPTH} levels deep")
        before = b.decoded
        b.charge(1, 0)
        try:
            node = Composer.compose_node(self, parent, index)
        finally:
            b.depth -= 1
        if isinstance(node, (SequenceNode, MappingNode)):
            b.sizes[id(node)] = b.decoded - before
        return node


def _refuse_tag(loader: _SafeJSONLoader, node: Node) -> Any:
    raise DecodeError(
        f"the YAML tag {node.tag!r} is not supported (line {node.start_mark.line + 1}): "
        "only JSON-compatible YAML (strings, numbers, booleans, null, lists, maps) is accepted"
    )


def _timestamp_as_string(loader: _SafeJSONLoader, node: Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


def _int(loader: _SafeJSONLoader, node: Node) -> Any:
    v = yaml.SafeLoader.construct_yaml_int(loader, node)  # type: ignore[arg-type]
    return v if -_INT64 <= v < _INT64 else float(v)


def _float(loader: _SafeJSONLoader, node: Node) -> Any:
    v = yaml.SafeLoader.construct_yaml_float(loader, node)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise DecodeError(
            f"the number {node.value!r} (line {node.start_mark.line + 1}) has no JSON form; "
            "write it as a string"
        )
    return v


def _mapping(loader: _SafeJSONLoader, node: Node) -> Any:
    assert isinstance(node, MappingNode)
    data: dict[str, Any] = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        if not (isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:str"):
            what = repr(key_node.value) if isinstance(key_node, ScalarNode) else "a list or map"
            raise DecodeError(
                f"mapping keys must be strings: {what} (line {key_node.start_mark.line + 1}) is not; quote it"
            )
        data[key_node.value] = loader.construct_object(value_node, deep=False)


_SafeJSONLoader.yaml_constructors = {
    "tag:yaml.org,2002:null": yaml.SafeLoader.construct_yaml_null,
    "tag:yaml.org,2002:bool": yaml.SafeLoader.construct_yaml_bool,
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": _float,
    "tag:yaml.org,2002:str": yaml.SafeLoader.construct_yaml_str,
    "tag:yaml.org,2002:timestamp": _timestamp_as_string,
    "tag:yaml.org,2002:seq": yaml.SafeLoader.construct_yaml_seq,
    "tag:yaml.org,2002:map": _mapping,
    None: _refuse_tag,
}
_SafeJSONLoader.yaml_multi_constructors = {}


def load_yaml(raw: bytes | str) -> Any:
    """One YAML document as JSON data (see the module docstring); raises :class:`DecodeError`."""
    loader = _SafeJSONLoader(raw)
    try:
        data = loader.get_single_data()
        aliased = loader.budget.aliased > 0
    except yaml.YAMLError as e:
        raise DecodeError(f"the request body is not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise DecodeError(f"the YAML document is nested more than {MAX_DEPTH} levels deep") from None
    finally:
        loader.dispose()
    if aliased:  # no shared dicts: each place of the object is its own
        data = orjson.loads(orjson.dumps(data))
    return data


def load_json(raw: bytes) -> Any:
    """One JSON document (orjson), refused when nested deeper than :data:`MAX_DEPTH`."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        msg = str(e).splitlines()[0] if str(e) else "malformed"
        if "depth limit" in msg:
            raise DecodeError(f"the JSON document is nested more than {MAX_DEPTH} levels deep") from None
        raise DecodeError(f"the request body is not valid JSON: {msg}") from None
    # Only a body with more brackets than the limit can be nested that deep: one C-speed count.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
        check_depth(data)
    return data


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`DecodeError` when ``data`` nests more than ``limit`` containers (iterative)."""
    if not isinstance(data, (dict, list)):
        return
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        cur, d = stack.pop()
        if d > limit:
            raise DecodeError(f"the JSON document is nested more than {limit} levels deep")
        for c in cur.values() if isinstance(cur, dict) else cur:
            if isinstance(c, (dict, list)):
                stack.append((c, d + 1))


def decode_body(raw: bytes, content_type: str) -> Any:
    """JSON data from a JSON or YAML body; an :class:`~ctl.apiserver.status.APIError` 400 when refused.

    ``content_type`` is the media type without parameters, lower case. Other media types
    are the caller's (it answers 415).
    """
    try:
        if content_type in YAML_TYPES:
            return load_yaml(raw)
        return load_json(raw)
    except DecodeError as e:
        raise st.bad_request(str(e)) from None


def is_yaml(content_type: str) -> bool:
    return content_type in YAML_TYPES
