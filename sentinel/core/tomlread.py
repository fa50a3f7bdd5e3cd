"""Reading a TOML file whose nesting is bounded: the agent's config and the hub's hub.toml.

No setting nests deeper than a few levels; tomllib recurses once per level (about 450 nested
arrays exhaust Python's stack), and the merges and the settings builder recurse too. So nesting is
bounded before a file reaches tomllib (lexically) and before its data goes further.
"""

from __future__ import annotations

import os
import tomllib
from typing import Any

MAX_DEPTH = 32


class TooDeep(ValueError):
    """A file whose nesting is past MAX_DEPTH."""


def _string_end(text: str, i: int) -> int:
    """The index just past the TOML string starting at `i` (basic, literal, or multi-line)."""
    quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
    j = i + len(quote)
    while j < len(text) and not text.startswith(quote, j):
        if len(quote) == 1 and text[j] == "\n":
            return j  # unterminated: tomllib will say so
        if text[j] == "\\" and quote[0] == '"':
            j += 1
        j += 1
    return j + len(quote)


def _check_nesting(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when arrays or inline tables nest deeper than `limit` (strings and comments
    skipped; a `[` opening a line outside any value is a table header, not nesting)."""
    depth, i, line_start = 0, 0, True
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i, line_start = _string_end(text, i), False
            continue
        if c == "#" or (c == "[" and depth == 0 and line_start):  # a comment or a [header]
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if c == "\n":
            line_start = True
        elif c not in " \t\r":
            line_start = False
            depth += (c in "[{") - (c in "]}")
            if depth > limit:
                line = text.count("\n", 0, i) + 1
                raise TooDeep(f"line {line}: arrays and inline tables nest deeper than {limit} levels")
        i += 1


def _check_depth(data: object, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep when parsed data (dotted keys and headers make tables too) nests deeper."""
    stack = [(data, 0)]
    while stack:
        value, level = stack.pop()
        if level > limit:
            raise TooDeep(f"tables and arrays nest deeper than {limit} levels")
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value)


def parse_toml(raw: bytes) -> dict[str, Any]:
    """tomllib, with nesting bounded before and after it."""
    text = raw.decode("utf-8")
    _check_nesting(text)
    data = tomllib.loads(text)
    _check_depth(data)
    return data


class TomlFileError(ValueError):
    """A TOML file that cannot be read or parsed; the message is one line naming the file."""


def read_toml_file(path: os.PathLike[str] | str) -> dict[str, Any]:
    """Read and parse a TOML file with bounded nesting; TomlFileError says in one line why not."""
    try:
        with open(path, "rb") as fh:
            return parse_toml(fh.read())
    except OSError as exc:
        raise TomlFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, TooDeep) as exc:
        raise TomlFileError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise TomlFileError(f"{path}: not valid TOML: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:  # a nesting the bounds did not foresee: still one line
        raise TomlFileError(f"{path}: not valid TOML: nested too deeply") from None
