"""The trail's hash chain in SQLite: appending a link with the row it chains, and verifying.

The `chain` table is the spine: one row per link (`seq`, `kind`, the content row it chains by
`ref`, `prev_hash`, `hash`). History rows and baseline updates keep their own columns and carry
their `seq`; the canonical row a link hashes is rebuilt from those columns every time — at
write and at verification — by the same functions here, so editing any chained column (a note,
an actor, a state, a snapshot) breaks the link's hash. Genesis and prune links have no content
table: their canonical row is kept in `chain.body`.

Chain links are never deleted. Pruning deletes old hazards with their history rows and appends
one `prune` link naming them, so their links stay (hashes intact, content gone) and verify.

`verify(conn)` walks every link (sentinel.hazards.chain.walk), then finds what no link covers:
history or baseline rows outside the chain, hazards without a trail, and hazard rows whose
accountable fields differ from the snapshot their last history row chained (an `UPDATE hazards
SET state = 'closed'` made with sqlite3).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sentinel.core.timefmt import iso
from sentinel.hazards.chain import (
    GENESIS_PREV,
    VERSION,
    Break,
    Link,
    Verdict,
    canonical,
    link_hash,
    refuse_floats,
    walk,
)
from sentinel.hazards.identity import Actor

HEAD = "SELECT seq, hash FROM chain ORDER BY seq DESC LIMIT 1"

FIXED_FIELDS = (
    "uid",
    "rule",
    "category",
    "subject",
    "fingerprint",
    "terminal",
    "first_seen",
    "drill",
    "auto_resolve",
)
"""What a hazard is (never changes after it is raised): snapshotted as one digest, `fixed`."""
SNAPSHOT_FIELDS = (
    "state", "severity", "owner", "deadline", "escalation_level", "recurrence_count",
    "resolved_by", "resolved_by_id", "resolved_at", "closed_by", "closed_by_id", "closed_at",
)  # fmt: skip
"""A hazard's accountable fields, snapshotted in clear by each of its history rows after the
action (occurrences, last_seen, evidence and title change with every sighting and are not part
of the trail), beside `fixed` and `items`: the digest of its checklist (seq, kind, text, who did
each measure and when, funding, who verified it)."""
_TIMES = frozenset({"deadline", "resolved_at", "closed_at", "first_seen"})
_BOOLS = frozenset({"drill", "auto_resolve"})
_ITEM_FIELDS = ("seq", "kind", "text", "done_by", "done_by_id", "done_at", "funding",
                "verified_by", "verified_by_id", "verified_at")  # fmt: skip
DIGEST_HEX = 32  # 128 bits: a forger cannot choose other values with the same digest


@dataclass(frozen=True, slots=True)
class Appended:
    """The link just written."""

    seq: int
    prev_hash: str
    hash: str
    row: dict[str, Any]


def store_id(db: sqlite3.Connection) -> str:
    """The store's id (made once by the schema migration that created the store)."""
    return str(db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0])


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the newest link; (0, 64 zeros) for a chain not begun."""
    row = db.execute(HEAD).fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_PREV)


# -- canonical rows ------------------------------------------------------------------------------


def snapshot(db: sqlite3.Connection, hazard_id: int) -> dict[str, Any]:
    """The hazard's accountable fields now, as a history row chains them (no floats)."""
    row = db.execute("SELECT * FROM hazards WHERE id = ?", (hazard_id,)).fetchone()
    items = db.execute("SELECT * FROM rectification WHERE hazard_id = ? ORDER BY seq", (hazard_id,))
    return snapshot_of(row, items.fetchall())


def snapshot_of(
    row: Mapping[str, Any] | sqlite3.Row, items: Iterable[Mapping[str, Any] | sqlite3.Row]
) -> dict[str, Any]:
    """`snapshot` from a hazards row and its rectification rows (in seq order)."""

    def value(name: str) -> Any:
        raw = row[name]
        return iso(raw) if name in _TIMES else bool(raw) if name in _BOOLS else raw

    out: dict[str, Any] = {name: value(name) for name in SNAPSHOT_FIELDS}
    out["fixed"] = _digest({name: value(name) for name in FIXED_FIELDS})
    listed = [[iso(i[k]) if k.endswith("_at") else i[k] for k in _ITEM_FIELDS] for i in items]
    out["items"] = _digest({"items": listed})
    return out


def _digest(value: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()[:DIGEST_HEX]


def _actor(row: Mapping[str, Any]) -> dict[str, Any]:
    """The identity object, with the display name and id as their own columns say."""
    actor = dict(json.loads(row["actor_info"]))
    actor["display"], actor["id"] = row["actor"], row["actor_id"]
    return actor


def _row_head(store: str, seq: int, kind: str, at: float) -> dict[str, Any]:
    """What every canonical row begins with: its format, store, place, kind and time."""
    return {"v": VERSION, "store": store, "seq": seq, "kind": kind, "at": iso(at)}


def history_row(store: str, seq: int, h: Mapping[str, Any]) -> dict[str, Any]:
    """A history row's canonical form (`h`: the row's columns with its hazard's `hazard_uid`;
    `snapshot` as its JSON text, or already parsed)."""
    snap = h["snapshot"]
    return {
        **_row_head(store, seq, "history", h["at"]),
        "hazard": h["hazard_uid"],
        "action": h["action"],
        "from": h["from_state"],
        "to": h["to_state"],
        "note": h["note"],
        "actor": _actor(h),
        "snapshot": json.loads(snap) if isinstance(snap, str) else snap,
    }


def baseline_row(store: str, seq: int, b: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline update's canonical form (its summary of scan statistics is not chained)."""
    return {
        **_row_head(store, seq, "baseline", b["at"]),
        "action": b["action"],
        "reason": b["reason"],
        "old_digest": b["old_digest"],
        "new_digest": b["new_digest"],
        "entries": b["entries"],
        "actor": _actor(b),
    }


HISTORY_FOR_LINK = (
    "SELECT h.*, z.uid AS hazard_uid FROM history h JOIN hazards z ON z.id = h.hazard_id WHERE h.id = ?"
)


# -- appending ---------------------------------------------------------------------------------


def append(
    db: sqlite3.Connection,
    kind: str,
    *,
    at: float,
    row_for: Callable[[int], dict[str, Any]],
    ref: int | None = None,
    hazard_uid: str | None = None,
    keep_body: bool = False,
) -> Appended:
    """Add the next link (inside the caller's transaction, which serialises writers)."""
    last, prev = head(db)
    seq = last + 1
    row = row_for(seq)
    refuse_floats(row)
    digest = link_hash(prev, row)
    db.execute(
        "INSERT INTO chain (seq, kind, ref, hazard_uid, at, body, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, kind, ref, hazard_uid, at, canonical(row).decode("ascii") if keep_body else None, prev, digest),
    )
    return Appended(seq, prev, digest, row)


def write_history(
    db: sqlite3.Connection,
    hazard_id: int,
    *,
    action: str,
    from_state: str | None,
    to_state: str | None,
    note: str,
    actor: Actor,
    at: float,
    store: str | None = None,
) -> tuple[int, Appended]:
    """Insert one history row — the display name and the identity apart, the hazard's snapshot
    after the action — and chain it; (its id, its link). The canonical row is built from the
    very values inserted, by the function verification rebuilds it with from the columns."""
    store = store or store_id(db)
    seq = head(db)[0] + 1
    snap = snapshot(db, hazard_id)
    columns = {
        "at": at,
        "actor": actor.display,
        "actor_id": actor.id,
        "actor_info": json.dumps(actor.to_json(), sort_keys=True),
        "action": action,
        "from_state": from_state,
        "to_state": to_state,
        "note": note,
        "snapshot": snap,
        "hazard_uid": db.execute("SELECT uid FROM hazards WHERE id = ?", (hazard_id,)).fetchone()[0],
    }
    cur = db.execute(
        "INSERT INTO history (hazard_id, at, actor, action, from_state, to_state, note, actor_id, "
        "actor_info, seq, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            hazard_id,
            at,
            actor.display,
            action,
            from_state,
            to_state,
            note,
            actor.id,
            columns["actor_info"],
            seq,
            json.dumps(snap, sort_keys=True, separators=(",", ":"), ensure_ascii=True),
        ),
    )
    history_id = int(cur.lastrowid or 0)
    link = append(
        db,
        "history",
        at=at,
        ref=history_id,
        hazard_uid=columns["hazard_uid"],
        row_for=lambda n: history_row(store, n, columns),
    )
    return history_id, link


def append_history(db: sqlite3.Connection, history_id: int, at: float) -> Appended:
    """Chain a history row just inserted (its `seq` column already set to the next link's)."""
    store = store_id(db)
    h = db.execute(HISTORY_FOR_LINK, (history_id,)).fetchone()
    return append(
        db,
        "history",
        at=at,
        ref=history_id,
        hazard_uid=h["hazard_uid"],
        row_for=lambda seq: history_row(store, seq, h),
    )


def append_baseline(db: sqlite3.Connection, update_id: int, at: float) -> Appended:
    """Chain a baseline update just inserted (its `seq` column already set)."""
    store = store_id(db)
    b = db.execute("SELECT * FROM baseline_updates WHERE id = ?", (update_id,)).fetchone()
    return append(db, "baseline", at=at, ref=update_id, row_for=lambda seq: baseline_row(store, seq, b))


def append_genesis(db: sqlite3.Connection, at: float, note: str) -> Appended:
    """The first link of a store."""
    return _append_standalone(db, "genesis", at, {"note": note})


def append_prune(db: sqlite3.Connection, at: float, uids: list[str], rows: int) -> Appended:
    """One link for a retention prune: which hazards left the store, with how many rows."""
    return _append_standalone(db, "prune", at, {"hazards": sorted(uids), "rows": rows})


def _append_standalone(db: sqlite3.Connection, kind: str, at: float, fields: dict[str, Any]) -> Appended:
    """A link that no other table holds: its row is kept in the chain itself (`keep_body`)."""
    store = store_id(db)
    return append(
        db, kind, at=at, keep_body=True, row_for=lambda seq: {**_row_head(store, seq, kind, at), **fields}
    )


# -- verifying ---------------------------------------------------------------------------------

_WALK = """
SELECT c.seq, c.kind, c.ref, c.hazard_uid AS link_uid, c.body, c.prev_hash, c.hash,
       h.id AS h_id, h.hazard_id AS h_hazard_id, h.seq AS h_seq, h.at AS h_at, h.actor AS h_actor,
       h.actor_id AS h_actor_id, h.actor_info AS h_actor_info, h.action AS h_action,
       h.from_state AS h_from_state, h.to_state AS h_to_state, h.note AS h_note,
       h.snapshot AS h_snapshot, z.uid AS h_hazard_uid,
       b.id AS b_id, b.seq AS b_seq, b.at AS b_at, b.actor AS b_actor, b.actor_id AS b_actor_id,
       b.actor_info AS b_actor_info, b.action AS b_action, b.reason AS b_reason,
       b.old_digest AS b_old_digest, b.new_digest AS b_new_digest, b.entries AS b_entries
FROM chain c
LEFT JOIN history h ON c.kind = 'history' AND h.id = c.ref
LEFT JOIN hazards z ON z.id = h.hazard_id
LEFT JOIN baseline_updates b ON c.kind = 'baseline' AND b.id = c.ref
ORDER BY c.seq
"""
_HISTORY_KEYS = ("at", "actor", "actor_id", "actor_info", "action", "from_state", "to_state", "note",
                 "snapshot", "hazard_uid")  # fmt: skip
_BASELINE_KEYS = ("at", "actor", "actor_id", "actor_info", "action", "reason", "old_digest", "new_digest",
                  "entries")  # fmt: skip


def _links(
    db: sqlite3.Connection, store: str, last: dict[int, tuple[int, Any]] | None = None
) -> Iterator[Link]:
    """The links in order, rows rebuilt; `last` collects each hazard's last chained snapshot."""
    for r in db.execute(_WALK):
        try:
            row = _rebuilt(store, r)
        except (ValueError, TypeError, KeyError):
            row = {"unreadable": True}  # a damaged JSON column: it cannot hash to what was stored
        hazard_id = r["h_hazard_id"]
        if last is not None and row is not None and hazard_id is not None and row.get("snapshot") is not None:
            last[int(hazard_id)] = (int(r["seq"]), row["snapshot"])
        yield Link(int(r["seq"]), r["kind"], r["prev_hash"], r["hash"], row, r["link_uid"], hazard_id)


def _rebuilt(store: str, r: sqlite3.Row) -> Mapping[str, Any] | None:
    """The canonical row of a link as the tables hold it now (None: its content row is gone)."""
    kind = r["kind"]
    if kind in ("genesis", "prune"):
        body: dict[str, Any] = json.loads(r["body"])
        return body
    prefix, keys, build = {
        "history": ("h_", _HISTORY_KEYS, history_row),
        "baseline": ("b_", _BASELINE_KEYS, baseline_row),
    }.get(kind, ("", (), None))
    if build is None:
        return {"unknown_kind": kind}
    if r[f"{prefix}id"] is None or (kind == "history" and r["h_hazard_uid"] is None):
        return None  # the row is gone, or the hazard it belongs to is
    fields = {k: r[prefix + k] for k in keys}
    seq = r[f"{prefix}seq"]
    return build(store, int(seq) if seq is not None else -1, fields)


def export(db: sqlite3.Connection, from_seq: int = 1) -> Iterator[dict[str, Any]]:
    """Every link from `from_seq` on, with its row as the tables hold it now: what an auditor
    recomputes (`sentinel hazards trail`) and compares with a central copy."""
    store = store_id(db)
    for link in _links(db, store):
        if link.seq >= from_seq:
            yield {
                "seq": link.seq,
                "kind": link.kind,
                "hazard_uid": link.hazard_uid,
                "prev_hash": link.prev_hash,
                "hash": link.hash,
                "row": dict(link.row) if link.row is not None else None,
            }


def compare(db: sqlite3.Connection, expected: Mapping[int, str]) -> list[Break]:
    """Breaks where a central copy's (seq -> hash) differs from this store's chain."""
    breaks: list[Break] = []
    stored = {
        int(r[0]): str(r[1])
        for r in db.execute(
            f"SELECT seq, hash FROM chain WHERE seq IN ({', '.join('?' * len(expected))})",  # noqa: S608
            list(expected),
        )
    } if expected else {}  # fmt: skip
    last = head(db)[0]
    for seq, digest in sorted(expected.items()):
        if seq > last:
            breaks.append(
                Break(seq, "cut", f"row {seq} is in the central copy but not here: the trail was cut")
            )
        elif stored.get(seq) != digest:
            message = (
                f"row {seq}: the central copy holds {digest[:16]}…, this store {str(stored.get(seq))[:16]}…"
            )
            breaks.append(Break(seq, "expected", message))
    return breaks


def pruned_uids(db: sqlite3.Connection) -> frozenset[str]:
    """Every hazard uid a prune link says left the store."""
    out: set[str] = set()
    for (body,) in db.execute("SELECT body FROM chain WHERE kind = 'prune'"):
        try:
            out.update(str(u) for u in json.loads(body).get("hazards", []))
        except (ValueError, TypeError, AttributeError):
            continue  # that link's own hash check reports it
    return frozenset(out)


def verify(db: sqlite3.Connection, expected: Mapping[int, str] | None = None) -> Verdict:
    """Walk the whole chain and check the tables against it (see the module docstring); with
    `expected` (seq -> hash, from a central copy), also that this chain holds those links."""
    store = store_id(db)
    last: dict[int, tuple[int, Any]] = {}
    verdict = walk(store, _links(db, store, last), pruned_uids(db))
    verdict.breaks += _outside_the_chain(db)
    verdict.breaks += _hazards_against_their_trail(db, last)
    if expected:
        verdict.breaks += compare(db, expected)
    verdict.sort()
    return verdict


def _outside_the_chain(db: sqlite3.Connection) -> list[Break]:
    """Rows a forger added with sqlite3: history or baseline rows no link covers."""
    breaks: list[Break] = []
    for r in db.execute(
        "SELECT h.id, h.hazard_id FROM history h WHERE h.seq IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM chain c WHERE c.kind = 'history' AND c.ref = h.id AND c.seq = h.seq)"
    ):
        message = (
            f"history row {r['id']} of hazard #{r['hazard_id']} is not in the chain (added outside Sentinel)"
        )
        breaks.append(Break(None, "unchained", message, int(r["hazard_id"])))
    for r in db.execute(
        "SELECT b.id FROM baseline_updates b WHERE b.seq IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM chain c WHERE c.kind = 'baseline' AND c.ref = b.id AND c.seq = b.seq)"
    ):
        breaks.append(
            Break(
                None, "unchained", f"baseline update {r['id']} is not in the chain (added outside Sentinel)"
            )
        )
    return breaks


def _hazards_against_their_trail(db: sqlite3.Connection, last: Mapping[int, tuple[int, Any]]) -> list[Break]:
    """Each hazard row against the snapshot its last chained history row holds."""
    breaks: list[Break] = []
    items: dict[int, list[sqlite3.Row]] = {}
    for item in db.execute("SELECT * FROM rectification ORDER BY hazard_id, seq"):
        items.setdefault(int(item["hazard_id"]), []).append(item)
    for row in db.execute("SELECT * FROM hazards ORDER BY id"):
        hazard_id = int(row["id"])
        if hazard_id not in last:
            breaks.append(Break(None, "untrailed", f"hazard #{hazard_id} has no chained trail", hazard_id))
            continue
        seq, then = last[hazard_id]
        if not isinstance(then, Mapping):
            continue  # the row's own hash check reports a damaged snapshot
        now = snapshot_of(row, items.get(hazard_id, []))
        changed = [k for k in now if now.get(k) != then.get(k)]
        if changed:
            said = "; ".join(_differs(k, now.get(k), then.get(k)) for k in changed[:3])
            message = f"hazard #{hazard_id}: {said} (its last trail row is row {seq})"
            breaks.append(Break(seq, "state", message, hazard_id))
    return breaks


def _differs(name: str, now: Any, then: Any) -> str:
    if name == "fixed":
        return f"what it is ({', '.join(FIXED_FIELDS)}) differs from what the trail says"
    if name == "items":
        return "its checklist differs from what the trail says"
    return f"{name} is {_short(now)} but the trail says {_short(then)}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
