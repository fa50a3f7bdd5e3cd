"""Time as Sentinel writes it: RFC 3339 in UTC (hazard records, tickets, exports, drills)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """An RFC 3339 UTC timestamp, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
