"""The hash chain over a store's trail: canonical rows, their hashes, and walking the chain.

Every accountable row of a store — a hazard's history row, a baseline update, a prune — is one
link, numbered `seq` 1, 2, 3 … without gaps. Its hash covers the previous link's hash and the
row's canonical encoding:

    hash = sha256( prev_hash + "\\n" + canonical(row) ).hexdigest()
    canonical(row) = JSON, keys sorted, separators "," and ":", ASCII only (\\uXXXX escapes);
                     no floats anywhere (times are RFC 3339 text, as tickets carry them)

The first link (seq 1, kind "genesis") has prev_hash = 64 zeros and names the store's random
`store_id`; every row names its store and its seq, so a link cannot be moved within a chain or
into another store's. A history row holds who acted (the identity object), what (action, from,
to, note), when, and a snapshot of the hazard's accountable fields after the action — so a
hazard row edited later no longer matches the last snapshot of its trail.

This module is pure (no SQLite): the store builds the rows (sentinel.hazards.links), `walk`
checks a sequence of links, and a receiver checks one ticket's link with `check_ticket`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
GENESIS_PREV = "0" * 64
KINDS = ("genesis", "history", "baseline", "prune")


def canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed (rows are built without floats: `refuse_floats` at write time)."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def link_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The hash of one link."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(row)).hexdigest()


def refuse_floats(row: Mapping[str, Any]) -> None:
    """TypeError if a row to chain holds a float anywhere: its text could differ between
    encoders, so a receiver in another language could not recompute the hash."""
    stack: list[Any] = [row]
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            raise TypeError("a chained row cannot hold a float (use RFC 3339 text or an integer)")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


@dataclass(frozen=True, slots=True)
class Link:
    """One stored link, with its row rebuilt from the store's tables (None: the row is gone)."""

    seq: int
    kind: str
    prev_hash: str
    hash: str
    row: Mapping[str, Any] | None
    hazard_uid: str | None = None
    hazard_id: int | None = None

    def where(self) -> str:
        """`row 17 (hazard #3, history)`: how a message names this link."""
        about = f"hazard #{self.hazard_id}, " if self.hazard_id is not None else ""
        return f"row {self.seq} ({about}{self.kind})"


@dataclass(frozen=True, slots=True)
class Break:
    """One thing wrong with a trail. `seq` is the link it is found at (None: not at a link)."""

    seq: int | None
    code: str  # gap | link | hash | store | missing | unchained | state | untrailed
    message: str
    hazard_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """For `sentinel hazards verify --json`."""
        return {"seq": self.seq, "code": self.code, "message": self.message, "hazard_id": self.hazard_id}


@dataclass
class Verdict:
    """What a walk found: the head it reached and every break, the first one first."""

    store_id: str
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_PREV
    pruned: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No break at all."""
        return not self.breaks

    @property
    def first(self) -> Break | None:
        """The break an operator should look at first (the lowest row)."""
        return self.breaks[0] if self.breaks else None

    def to_json(self) -> dict[str, Any]:
        """For `sentinel hazards verify --json` and the agent's log."""
        return {
            "ok": self.ok,
            "store_id": self.store_id,
            "rows": self.rows,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "pruned_rows": self.pruned,
            "breaks": [b.to_json() for b in self.breaks],
        }

    def sort(self) -> None:
        """Breaks by row (those not at a row last), so `first` is the earliest in the chain."""
        self.breaks.sort(key=lambda b: (b.seq is None, b.seq or 0))


def walk(store_id: str, links: Iterable[Link], pruned_uids: frozenset[str] = frozenset()) -> Verdict:
    """Check links in seq order: no gap, each links to the one before, each row hashes to its
    stored hash and names this store; a missing row is allowed only for a pruned hazard."""
    verdict = Verdict(store_id)
    expected, prev = 1, GENESIS_PREV
    for link in links:
        verdict.rows += 1
        if link.seq != expected:
            verdict.breaks.append(
                Break(expected, "gap", f"rows {expected} to {link.seq - 1} are missing from the chain")
            )
        if link.prev_hash != prev:
            verdict.breaks.append(
                Break(
                    link.seq,
                    "link",
                    f"{link.where()}: its prev_hash is not the hash of the row before it",
                    link.hazard_id,
                )
            )
        if link.row is None:
            if link.hazard_uid is not None and link.hazard_uid in pruned_uids:
                verdict.pruned += 1
            else:
                verdict.breaks.append(
                    Break(link.seq, "missing", f"{link.where()}: its record was deleted", link.hazard_id)
                )
        elif link.row.get("unreadable"):
            verdict.breaks.append(
                Break(
                    link.seq,
                    "hash",
                    f"{link.where()}: its columns no longer parse (changed after it was written)",
                    link.hazard_id,
                )
            )
        elif link.row.get("store") != store_id or link.row.get("seq") != link.seq:
            verdict.breaks.append(
                Break(
                    link.seq, "store", f"{link.where()}: it belongs to another store or place", link.hazard_id
                )
            )
        elif link_hash(link.prev_hash, link.row) != link.hash:
            verdict.breaks.append(
                Break(link.seq, "hash", f"{link.where()}: changed after it was written", link.hazard_id)
            )
        prev, expected = link.hash, link.seq + 1
        verdict.head_seq, verdict.head_hash = link.seq, link.hash
    return verdict


def check_ticket(ticket: Mapping[str, Any]) -> str | None:
    """For a receiver (the hub): None when the ticket's `chain` link is self-consistent, else why.

    This proves the ticket's row is the row the terminal chained under that hash. That the hash
    is the terminal's real history is proved by holding it: a later rewrite of the terminal's
    trail at or before this row changes this row's hash there, and the copies disagree."""
    chain = ticket.get("chain")
    if not isinstance(chain, Mapping):
        return "no chain in the ticket"
    row = chain.get("row")
    if not isinstance(row, Mapping):
        return "no chained row in the ticket"
    if row.get("store") != ticket.get("store_id"):
        return "the chained row names another store"
    if row.get("seq") != chain.get("seq"):
        return "the chained row has another seq"
    try:
        computed = link_hash(str(chain.get("prev_hash", "")), row)
    except (TypeError, UnicodeEncodeError):
        return "the chained row cannot be encoded canonically"
    if computed != chain.get("hash"):
        return "the chained row does not hash to the ticket's chain hash"
    return None
