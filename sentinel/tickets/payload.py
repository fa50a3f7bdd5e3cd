"""The ticket payload: one documented, versioned JSON document per hazard transition.

Schema (version 1), documented in docs/tickets.md:

    {"schema": "sentinel.ticket/1", "idempotency_key": str, "transition": str,
     "terminal": str, "branch": str, "agent_version": str, "drill": bool,
     "sent_for": {"actor": str, "at": iso8601, "note": str},
     "hazard": <the hazard record, DESIGN §3, with at most the last 20 history rows>}

No secrets and no file contents: evidence carries attributes and hashes, never data.
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.core.timefmt import iso
from sentinel.hazards.records import HazardRecord

SCHEMA = "sentinel.ticket/1"
HISTORY_IN_TICKET = 20


def idempotency_key(terminal: str, hazard_id: int, history_id: int) -> str:
    """Stable for one transition across retries, restarts and sinks."""
    return f"sentinel-{terminal}-{hazard_id}-{history_id}"


def build(
    *,
    record: HazardRecord,
    transition: str,
    key: str,
    terminal: str,
    branch: str,
    agent_version: str,
    actor: str,
    at: float,
    note: str,
) -> dict[str, Any]:
    """The payload for one transition of one hazard."""
    hazard = record.to_json()
    hazard["history"] = hazard["history"][-HISTORY_IN_TICKET:]
    return {
        "schema": SCHEMA,
        "idempotency_key": key,
        "transition": transition,
        "terminal": terminal,
        "branch": branch,
        "agent_version": agent_version,
        "drill": record.drill,
        "sent_for": {"actor": actor, "at": iso(at), "note": note},
        "hazard": hazard,
    }


def encode(payload: dict[str, Any]) -> str:
    """Compact, deterministic JSON; never raises on odd strings (surrogates are escaped)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
