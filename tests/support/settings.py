"""Walking a settings dataclass tree for its numbers, and hostile values to set them to.

Shared by the agent's config bounds test (tests/config/test_bounds.py) and the hub's
(tests/hub/test_bounds.py): every number a config declares must have a range, and hostile
values give one error line per problem.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

from hypothesis import strategies as st

from sentinel.core.settings import Duration, Size

NUMERIC = (int, float, Duration, Size)


def numeric_keys(root: type, lists: set[tuple[str, ...]] | None = None) -> list[tuple[tuple[str, ...], type]]:
    """(dotted path with "*" for table keys, type) of every number `root` declares; the paths of
    numbers held in lists go into `lists` when given."""
    out: list[tuple[tuple[str, ...], type]] = []

    def visit(hint: Any, path: tuple[str, ...], in_list: bool = False) -> None:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            for option in typing.get_args(hint):
                if option is not type(None):
                    visit(option, path)
        elif dataclasses.is_dataclass(hint):
            hints = typing.get_type_hints(hint)
            for f in dataclasses.fields(hint):
                if not f.metadata.get("internal"):
                    visit(hints[f.name], (*path, f.metadata.get("key") or f.name))
        elif origin in (tuple, list):
            for item in typing.get_args(hint)[:1]:
                visit(item, path, in_list=True)
        elif origin is dict or (origin is not None and "Mapping" in str(origin)):
            visit(typing.get_args(hint)[1], (*path, "*"))
        elif hint in NUMERIC:
            out.append((path, hint))
            if in_list and lists is not None:
                lists.add(path)

    visit(root, ())
    return out


@dataclasses.dataclass(frozen=True)
class Nested:
    """An array nested `depth` levels deep, written as TOML text (never built as a Python list:
    printing a 700-deep list would recurse too)."""

    depth: int

    def toml(self) -> str:
        return "[" * self.depth + "1" + "]" * self.depth


def nested(depth: int) -> Nested:
    return Nested(depth)


def toml_value(value: Any) -> str:
    """`value` as TOML (nested lists allowed; floats including inf and nan)."""
    if isinstance(value, Nested):
        return value.toml()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


HOSTILE = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**53 + 1, 2**63, 10**20, -1, 0, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-9, 5e-324, float("inf"), float("nan")]),
    st.sampled_from(['"9999999w"', '"0.000000001s"', '"1e400s"', '"99999999999999999999d"', '"0s"']).map(
        json.loads
    ),
    st.sampled_from(["9999999w", "0.000000001s", "0ms", "1ms", "100000d", "7EiB", "99999999999PiB"]),
    st.integers(min_value=1, max_value=700).map(nested),
)
"""Values past every end of a number: huge, negative, tiny, non-finite, nested, odd units."""
