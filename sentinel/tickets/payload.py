"""The ticket payload: one documented, versioned JSON document per hazard transition.

Schema (version 1, grown additively — nothing renamed), documented in docs/tickets.md:

    {"schema": "sentinel.ticket/1", "idempotency_key": str, "transition": str,
     "terminal": str, "branch": str, "agent_version": str, "drill": bool,
     "store_id": str, "transition_actor": {"source", "id", "display", ...},
     "chain": {"seq": int, "hash": str, "prev_hash": str, "row": {...the chained row}},
     "baseline_digest": str | null,
     "sent_for": {"actor": str, "at": iso8601, "note": str},
     "hazard": <the hazard record, DESIGN §3, with `uid` and at most the last 20 history rows>}

No secrets and no file contents: evidence carries attributes and hashes, never data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sentinel.core.timefmt import iso
from sentinel.hazards.identity import Actor
from sentinel.hazards.records import HazardRecord

SCHEMA = "sentinel.ticket/1"
HISTORY_IN_TICKET = 20


def idempotency_key(hazard_uid: str, history_id: int) -> str:
    """Stable for one transition across retries, restarts and sinks, and unique across the fleet:
    the hazard's UUIDv7 is never made twice (a re-imaged terminal with the same name included),
    and the audit row number tells one transition of that hazard from the next."""
    return f"sentinel-{hazard_uid}-{history_id}"


def build(
    *,
    record: HazardRecord,
    transition: str,
    key: str,
    terminal: str,
    branch: str,
    agent_version: str,
    actor: Actor,
    at: float,
    note: str,
    store_id: str,
    chain: Mapping[str, Any] | None = None,
    baseline_digest: str | None = None,
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
        "store_id": store_id,
        "transition_actor": actor.to_json(),
        "chain": dict(chain) if chain is not None else None,
        "baseline_digest": baseline_digest,
        "sent_for": {"actor": actor.display, "at": iso(at), "note": note},
        "hazard": hazard,
    }


def encode(payload: dict[str, Any]) -> str:
    """Compact, deterministic JSON; never raises on odd strings (surrogates are escaped)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
