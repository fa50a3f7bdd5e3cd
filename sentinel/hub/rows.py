"""Between a ticket's JSON, the hub's table rows and the store's value types: times, actors,
history rows and their identity, actions and drill runs (no queries here)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sentinel.core.model import clean_text
from sentinel.hub.model import ActionRow, Actor, HistoryRow


def parse_time(value: Any) -> float | None:
    """RFC 3339 text (or a number) to Unix seconds; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def actor_id_of(value: Any) -> str | None:
    if value is None:
        return None
    return Actor.from_json(value).id


def history_key(row: dict[str, Any]) -> str:
    """A history row's identity: its sequence when it carries one, else a digest of its content."""
    if isinstance(row.get("seq"), int):
        return f"s{row['seq']}"
    actor = row.get("actor")
    who = json.dumps(actor, sort_keys=True) if isinstance(actor, dict) else str(actor)
    text = "\x1f".join(str(row.get(k)) for k in ("at", "action", "from", "to", "note")) + "\x1f" + who
    return "d" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def text_value(value: Any) -> str:
    """A string column's value: never None, never a lone surrogate (UTF-8 databases refuse them)."""
    return clean_text(str(value)) if value else ""


def int_value(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def history_values(hazard_pk: int, h: dict[str, Any]) -> dict[str, Any]:
    identity = h.get("identity")
    if isinstance(identity, dict) and identity.get("id"):  # issue 20: who it was, and the typed name
        actor = Actor(
            str(identity["id"]),
            str(h.get("actor") or identity.get("display") or ""),
            str(identity.get("source") or ""),
        )
    elif h.get("actor_id"):
        actor = Actor(str(h["actor_id"]), str(h.get("actor") or ""), "")
    else:
        actor = Actor.from_json(h.get("actor"))
    seq = h.get("seq") if isinstance(h.get("seq"), int) else None
    return {
        "hazard_pk": hazard_pk,
        "row_key": history_key(h),
        "seq": seq,
        "at": parse_time(h.get("at")),
        "actor_id": actor.id,
        "actor_display": actor.display,
        "actor_source": actor.source,
        "action": str(h.get("action") or "")[:32],
        "from_state": h.get("from"),
        "to_state": h.get("to"),
        "note": str(h.get("note") or ""),
        "hash": str(h["hash"]) if h.get("hash") else None,
    }


def history_entry(h: Any) -> HistoryRow:
    return HistoryRow(
        h.at,
        h.action,
        h.from_state,
        h.to_state,
        Actor(h.actor_id, h.actor_display, h.actor_source),
        h.note,
        h.seq,
        h.hash,
    )


def action_row(a: Any) -> ActionRow:
    return ActionRow(
        id=int(a.id),
        uid=a.uid,
        terminal=a.terminal,
        hazard_pk=int(a.hazard_pk),
        hazard_uid=a.hazard_uid,
        local_id=int(a.local_id),
        action=a.action,
        note=a.note,
        owner=a.owner,
        item=a.item,
        requested_by=a.requested_by,
        requested_display=a.requested_display,
        requested_at=a.requested_at,
        state=a.state,
        result_at=a.result_at,
        reason=a.reason,
        offered=int(a.offered),
    )


def drill_row(d: Any) -> dict[str, Any]:
    return {
        "terminal": d.terminal,
        "branch_id": d.branch_id,
        "scenario": d.scenario,
        "started_at": d.started_at,
        "finished_at": d.finished_at,
        "passed": bool(d.passed),
        "trigger": d.trigger,
        "stages": json.loads(d.stages or "[]"),
    }
