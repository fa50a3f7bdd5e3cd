"""JSON on the ingest hot path: orjson when installed (the hub extra has it), else the stdlib.

orjson refuses lone surrogates, which the agent's ASCII-escaped payloads may carry (file names
that are not UTF-8); those fall back to the stdlib, which keeps them escaped.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ModuleNotFoundError:  # pragma: no cover - the hub extra installs it
    orjson = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """Parse JSON text; ValueError (or UnicodeDecodeError) when it is not JSON."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # lone surrogates and other edge cases: the stdlib decides
    return json.loads(data)


def dumps(value: Any) -> str:
    """Compact JSON text, non-ASCII kept as UTF-8."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode("utf-8")
        except TypeError:
            pass  # lone surrogates: escaped by the stdlib (ASCII), storable anywhere
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))
