"""Showing what terminals send: escaped, with control and direction characters made visible.

Evidence, subjects, owners, notes and actor names come from the terminals (a file name or a user
name can carry "<script>", an ANSI escape or a right-to-left override). Jinja's autoescape already
makes HTML inert; `show()` additionally renders every C0/C1 control character, DEL and Unicode
direction/invisible formatting character as a visible `\\xNN` / `\\uNNNN` escape, so a file name
cannot hide, reorder or fake text on the page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup, escape

_INVISIBLE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
    "\ud800-\udfff]"
)
MAX_SHOWN = 2000
"""Characters of one value shown; the rest is cut with a mark (evidence is bounded anyway)."""


def _escape_char(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def show(value: Any, *, limit: int = MAX_SHOWN, multiline: bool = False) -> Markup:
    """A value as safe HTML: escaped, invisible characters shown as escapes, long text cut.

    `multiline` keeps line breaks (a person's note) as <br>; elsewhere they are shown as \\x0a.
    """
    if value is None:
        return Markup("")
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    cut = len(value) > limit
    if cut:
        value = value[:limit]
    if multiline:
        lines = value.replace("\r\n", "\n").split("\n")
        return Markup("<br>").join(show(line, limit=limit) for line in lines)
    parts: list[str] = []
    last = 0
    for match in _INVISIBLE.finditer(value):
        parts.append(str(escape(value[last : match.start()])))
        parts.append(
            f'<span class="ctl" title="control character">{escape(_escape_char(match.group()))}</span>'
        )
        last = match.end()
    parts.append(str(escape(value[last:])))
    if cut:
        parts.append('<span class="cut">…</span>')
    return Markup("".join(parts))  # noqa: S704 - every piece above went through escape()


def plain(value: Any, *, limit: int = 200) -> str:
    """A value as one line of plain text (for titles and attributes): invisible characters as escapes."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _INVISIBLE.sub(lambda m: _escape_char(m.group()), text.replace("\n", " "))
    return text[:limit]


def evidence_items(entry: Any) -> list[tuple[str, Any]]:
    """One evidence entry as (key, value) rows; a non-dict entry is one row without a key."""
    if isinstance(entry, dict):
        return [(str(k), v) for k, v in sorted(entry.items(), key=lambda kv: str(kv[0]))]
    return [("", entry)]
