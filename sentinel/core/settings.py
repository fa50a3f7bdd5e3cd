"""Typed config building: TOML tables -> frozen dataclasses, with errors that name file and key.

Every config section is a frozen dataclass. `build()` walks its fields with their type hints and
converts the TOML value, collecting *every* error (not just the first) as `(path, message)`.
Field metadata adds what a type cannot say:

- `key`: the TOML key when it is not a Python name (`for` -> field `for_`),
- `check`: a function returning an error message for an impossible value, or None.

Collector and sink modules define their own config dataclasses with these helpers, so adding a
section never means teaching the loader a new trick.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

KeyPath = tuple[str | int, ...]
Bounds = Callable[[KeyPath], "tuple[float, float] | None"]
"""The allowed range of the number at a key path (None: only the type's own limits)."""
LARGEST = 2**53  # beyond this no setting is meaningful, and floats stop counting in ones
LONGEST = 100 * 366 * 86400.0  # seconds: a duration past a century is a typo (and overflows waits)
T = TypeVar("T")


class Duration(float):
    """Seconds, written in config as "30s", "5m", "2h", "7d" or "1h30m" (a bare number is seconds)."""


class Size(int):
    """Bytes, written in config as "500MiB", "2GB", "4096" or a bare integer."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}


def parse_duration(text: str) -> Duration:
    """Parse "1h30m" into Duration(5400.0); raise ValueError on anything else."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            raise ValueError(text)
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(text)
    return Duration(total)


def parse_size(text: str) -> Size:
    """Parse "500MiB" into Size(524288000); raise ValueError on anything else."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    unit = (match.group(2) or "").lower()
    return Size(int(float(match.group(1)) * _SIZE_UNITS[unit]))


def format_duration(seconds: float) -> str:
    """The shortest config-style spelling of a duration: 5400 -> "1h30m"."""
    if seconds <= 0:
        return "0s"
    parts, rest = [], round(seconds, 3)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count = int(rest // size)
        if count:
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest > 0:
        parts.append(f"{round(rest * 1000)}ms")
    return "".join(parts)


def field(
    default: Any = dataclasses.MISSING,
    *,
    key: str | None = None,
    check: Callable[[Any], str | None] | None = None,
    default_factory: Callable[[], Any] | None = None,
    internal: bool = False,
) -> Any:
    """A dataclass field with config metadata (TOML key alias, a value check).

    An `internal` field is set by the loader, never read from TOML.
    """
    metadata = {"key": key, "check": check, "internal": internal}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positive(value: float) -> str | None:
    """Check: the value must be above zero."""
    return None if value > 0 else f"must be greater than 0, got {value}"


def non_negative(value: float) -> str | None:
    """Check: the value must be zero or more."""
    return None if value >= 0 else f"must not be negative, got {value}"


def ratio(value: float) -> str | None:
    """Check: the value must lie between 0 and 1."""
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value}"


def non_empty(value: str) -> str | None:
    """Check: the string must not be empty."""
    return None if value.strip() else "must not be empty"


class RangeTable:
    """A Builder's `bounds` from a table of dotted keys: list indices dropped (`rules[3].for` is
    `rules.for`), a table of numbers matched with `*` (`hazards.sla.*`), patterns by fnmatch."""

    def __init__(self, ranges: dict[str, tuple[float, float]]) -> None:
        self.ranges = ranges
        self._found: dict[str, tuple[float, float] | None] = {}

    @staticmethod
    def key_of(path: KeyPath) -> str:
        """The dotted key of a path, list indices dropped: ("rules", 3, "for") -> "rules.for"."""
        return ".".join(str(p) for p in path if not isinstance(p, int))

    def lookup(self, key: str) -> tuple[float, float] | None:
        """The range of a dotted key (None: no entry matches)."""
        if key in self._found:
            return self._found[key]
        found = self.ranges.get(key)
        if found is None:
            found = next(
                (v for k, v in self.ranges.items() if "*" in k and fnmatch.fnmatchcase(key, k)), None
            )
        self._found[key] = found
        return found

    def __call__(self, path: KeyPath) -> tuple[float, float] | None:
        """The allowed range of the number at `path`."""
        return self.lookup(self.key_of(path))


def plain_text(value: str) -> str | None:
    """Check: a non-empty name without control characters (it lands in labels, reports, tickets)."""
    if not value.strip():
        return "must not be empty"
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        return f"must not contain control characters (found {bad!r} at {value.index(bad)})"
    return None


def check_name(value: str) -> str | None:
    """Check: a lower-case identifier usable as a label value and a key."""
    if _NAME.match(value):
        return None
    return f'expected a lower-case name like "disk_full" (a-z, 0-9, _), got "{value}"'


def check_regexes(values: tuple[str, ...]) -> str | None:
    """Check: every value compiles as a regular expression."""
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            return f"invalid regular expression {value!r}: {exc}"
    return None


def format_path(path: KeyPath) -> str:
    """Render ("rules", 3, "for") as "rules[3].for"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _show(value: Any, number: float | None = None) -> str:
    """`number` (default: `value`) as the config would spell a value of `value`'s type."""
    if number is None and isinstance(value, int):
        return str(value)
    n = float(value if number is None else number)
    if isinstance(value, Duration):
        return format_duration(n) if n >= 0.001 else f"{n:g}s"
    if isinstance(value, int) and n.is_integer():
        return str(int(n)) if abs(n) < 1e21 else f"{n:g}"
    return f"{n:g}"


def _type_name(hint: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        Duration: 'a duration like "5m"',
        Size: 'a size like "500MiB"',
        Path: "a path",
    }
    if hint in names:
        return names[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in hint)
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    if get_origin(hint) in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(hint) or get_origin(hint) in (dict, Mapping):
        return "a table"
    return str(hint)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value).replace("'", '"') if '"' not in value else repr(value)
    return repr(value)


class Builder:
    """Converts nested TOML data into dataclasses, collecting every error with its key path.

    `base_dir` resolves relative `Path` values; `path_base` can vary it per key path so that a
    path written in a drop-in is relative to the drop-in's own directory.
    """

    def __init__(self, base_dir: Callable[[KeyPath], Path], bounds: Bounds | None = None) -> None:
        self.errors: list[tuple[KeyPath, str]] = []
        self._base_dir = base_dir
        self._bounds = bounds

    def error(self, path: KeyPath, message: str) -> None:
        """Record one error at `path`."""
        self.errors.append((path, message))

    def build(self, cls: type[T], data: Any, path: KeyPath) -> T | None:
        """Build dataclass `cls` from `data`; None (with errors recorded) when it cannot."""
        if not isinstance(data, dict):
            self.error(path, f"expected a table, got {_describe(data)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {
            f.metadata.get("key") or f.name: f
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if not f.metadata.get("internal")
        }
        for key in data:
            if key not in fields:
                self.error((*path, key), f"unknown key (known keys: {', '.join(sorted(fields))})")
        kwargs: dict[str, Any] = {}
        ok = True
        for key, fld in fields.items():
            if key not in data:
                if fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
                    self.error((*path, key), "required key is missing")
                    ok = False
                continue
            value = self.convert(hints[fld.name], data[key], (*path, key))
            if value is _INVALID:
                ok = False
                continue
            check = fld.metadata.get("check")
            problem = check(value) if check else None
            if problem:
                self.error((*path, key), problem)
                ok = False
                continue
            kwargs[fld.name] = value
        if not ok:
            return None
        instance = cls(**kwargs)
        validate = getattr(instance, "validate", None)
        if validate is not None:
            for sub, message in validate():
                self.error((*path, *sub), message)
        return instance

    def convert(self, hint: Any, value: Any, path: KeyPath) -> Any:  # noqa: PLR0912
        """Convert one value to `hint`, or record an error and return the _INVALID marker."""
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            options = [a for a in get_args(hint) if a is not type(None)]
            if len(options) == 1:
                return self.convert(options[0], value, path)
            for option in options:  # first option that converts without error wins
                trial = Builder(self._base_dir, self._bounds)
                result = trial.convert(option, value, path)
                if result is not _INVALID:
                    return result
            return self._bad(path, " or ".join(_type_name(o) for o in options), value)
        if hint is Any:
            return value
        if hint is bool:
            return value if isinstance(value, bool) else self._bad(path, "true or false", value)
        if hint is Duration:
            return self._bounded(path, self._duration(value, path))
        if hint is Size:
            return self._bounded(path, self._size(value, path))
        if hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
            return self._bounded(path, value) if ok else self._bad(path, "an integer", value)
        if hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return self._bounded(path, float(value)) if ok else self._bad(path, "a number", value)
        if hint is str:
            return value if isinstance(value, str) else self._bad(path, "a string", value)
        if hint is Path:
            if not isinstance(value, str) or not value:
                return self._bad(path, "a path", value)
            p = Path(value).expanduser()
            return Path(os.path.normpath(p if p.is_absolute() else self._base_dir(path) / p))
        if origin is Literal:
            return value if value in get_args(hint) else self._bad(path, _type_name(hint), value)
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            try:
                return hint(value)
            except ValueError:
                return self._bad(path, _type_name(hint), value)
        if origin in (tuple, list):
            return self._sequence(hint, value, path)
        if origin in (dict, Mapping):
            return self._mapping(hint, value, path)
        if dataclasses.is_dataclass(hint):
            built = self.build(hint, value, path)  # type: ignore[arg-type]
            return _INVALID if built is None else built
        raise TypeError(f"config type {hint!r} at {format_path(path)} is not supported")

    def _bounded(self, path: KeyPath, value: Any) -> Any:
        """A converted number within its type's limits and its key's range, or _INVALID."""
        if value is _INVALID:
            return value
        number = float(value)
        problem = ""
        if not math.isfinite(number):
            problem = f"must be a finite number, got {value}"
        elif isinstance(value, Duration) and number > LONGEST:
            problem = f"is too long ({number:g}s; a century at most)"
        elif abs(number) > LARGEST:
            problem = f"is too large ({number:g}; at most 2^53)"
        elif self._bounds is not None and (limits := self._bounds(path)) is not None:
            low, high = limits
            if not low <= number <= high:
                problem = f"must be between {_show(value, low)} and {_show(value, high)}, got {_show(value)}"
        if problem:
            self.error(path, problem)
            return _INVALID
        return value

    def _bad(self, path: KeyPath, expected: str, value: Any) -> Any:
        self.error(path, f"expected {expected}, got {_describe(value)}")
        return _INVALID

    def _duration(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return Duration(value)
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError:
                pass
        return self._bad(path, 'a duration like "5m"', value)

    def _size(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return Size(value)
        if isinstance(value, str):
            try:
                return parse_size(value)
            except ValueError:
                pass
        return self._bad(path, 'a size like "500MiB"', value)

    def _sequence(self, hint: Any, value: Any, path: KeyPath) -> Any:
        if not isinstance(value, list):
            return self._bad(path, "a list", value)
        args = get_args(hint)
        item_hint = args[0] if args else Any
        items = [self.convert(item_hint, v, (*path, i)) for i, v in enumerate(value)]
        if any(i is _INVALID for i in items):
            return _INVALID
        return tuple(items)

    def _mapping(self, hint: Any, value: Any, path: KeyPath) -> Any:
        if not isinstance(value, dict):
            return self._bad(path, "a table", value)
        key_hint, value_hint = get_args(hint) or (str, Any)
        out = {}
        for k, v in value.items():
            key = self.convert(key_hint, k, (*path, k)) if key_hint is not str else k
            converted = self.convert(value_hint, v, (*path, k))
            if key is _INVALID or converted is _INVALID:
                return _INVALID
            out[key] = converted
        return types.MappingProxyType(out)


_INVALID: Any = object()


def frozen_map() -> Any:
    """Default factory for an empty read-only mapping field."""
    return types.MappingProxyType({})
