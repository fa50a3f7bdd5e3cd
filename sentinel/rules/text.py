"""Matchers and templates shared by threshold and event rules.

Matchers (label values, event fields): `"value"` equals, `"!value"` differs, `"~regex"` matches
fully, `"!~regex"` does not. Templates fill `{name}` or `{name:.0%}` from a dict of values; an
unknown name is left as written. Values are inserted, never interpreted, so a file name with
braces or format codes in it cannot reach the formatter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from sentinel.core.model import Scalar

_PLACEHOLDER = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


@lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(pattern: str, value: Scalar) -> bool:
    """Whether `value` satisfies one matcher."""
    text = "" if value is None else str(value)
    if pattern.startswith("!~"):
        return _compile(pattern[2:]).fullmatch(text) is None
    if pattern.startswith("~"):
        return _compile(pattern[1:]).fullmatch(text) is not None
    if pattern.startswith("!"):
        return text != pattern[1:]
    return text == pattern


def matcher_error(pattern: str) -> str | None:
    """The problem with a matcher's regex, or None (used by config validation)."""
    body = pattern[2:] if pattern.startswith("!~") else pattern[1:] if pattern.startswith("~") else None
    if body is None:
        return None
    try:
        re.compile(body)
    except re.error as exc:
        return f"invalid regular expression {body!r}: {exc}"
    return None


def all_match(matchers: Mapping[str, str], values: Mapping[str, Scalar]) -> bool:
    """Whether every matcher holds (a missing key counts as the empty string)."""
    return all(matches(p, values.get(k)) for k, p in matchers.items())


def render(template: str, values: Mapping[str, Scalar]) -> str:
    """Fill `{name}` and `{name:spec}` placeholders; leave unknown ones untouched."""

    def fill(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2)
        if name not in values:
            return match.group(0)
        value = values[name]
        if spec and isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return format(value, spec)
            except ValueError:
                return str(value)
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, template)
