"""The typed hazard record keeps the JSON contract byte for byte: records, exports and ticket
payloads of one scenario are exactly what the store wrote before HazardRecord existed
(tests/hazards/data/golden_records.json was written by the dict-based store of commit 43f2359),
once what issue 20 added is taken out again: the additive keys (identities, uids, store id,
funding and verifier, chain links), the CSV's added columns, the ledger's uid and verifier notes — and the
idempotency key, whose documented change is from `sentinel-<terminal>-<id>-<row>` to
`sentinel-<uid>-<row>`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sentinel import __version__
from sentinel.core.model import Category, Finding, Severity, freeze_fields
from sentinel.hazards import export
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.records import HazardRecord
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from sentinel.tickets.ticketing import Ticketing
from tests.support.people import who

GOLDEN = Path(__file__).parent / "data" / "golden_records.json"
ADDED_KEYS = frozenset(
    {
        "uid",
        "resolved_by_id",
        "closed_by_id",
        "actor_id",
        "identity",
        "done_by_id",
        "funding",
        "verified_by",
        "verified_by_id",
        "verified_at",
        "store_id",
        "transition_actor",
        "seq",
        "hash",
        "chain",
        "baseline_digest",
    }
)
ADDED_CSV_COLUMNS = 6


def _without_added(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_added(v) for k, v in value.items() if k not in ADDED_KEYS}
    if isinstance(value, list):
        return [_without_added(v) for v in value]
    return value


def _old_key(payload: dict[str, Any]) -> dict[str, Any]:
    uid, hazard_id = payload["hazard"]["uid"], payload["hazard"]["id"]
    key = payload["idempotency_key"]
    assert key.startswith(f"sentinel-{uid}-")
    payload["idempotency_key"] = key.replace(f"sentinel-{uid}-", f"sentinel-t1-{hazard_id}-")
    return payload


def _old_payload(text: str) -> str:
    payload = _without_added(_old_key(json.loads(text)))
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=True)


def _old_csv(text: str) -> str:
    return "".join(",".join(line.split(",")[:-ADDED_CSV_COLUMNS]) + "\n" for line in text.splitlines())


def _old_markdown(text: str) -> str:
    text = re.sub(r"; uid `[0-9a-f-]+`", "", text)
    return re.sub(r"; verified by [^;\n]+ at \S+", "", text)


def _finding(
    clock: FakeClock, subject: str, severity: Severity = Severity.MAJOR, state: str = "firing"
) -> Finding:
    return Finding(
        rule="disk",
        subject=subject,
        state=state,
        severity=severity,
        category=Category.TERMINAL_EQUIPMENT,
        title=f"disk on {subject}",
        time=clock.time(),
        evidence=freeze_fields({"used": 0.97, "path": subject}),
        rectification=("free space", "check rotation"),
        auto_resolve=True,
    )


def test_records_exports_and_payloads_are_byte_identical(tmp_path: Path) -> None:
    """raise, severity up, a second hazard, ack, tick, assign, escalation, auto-resolve: same bytes."""
    clock = FakeClock()
    ticketing = Ticketing(
        terminal="t1", branch="0101", agent_version=__version__, sinks_for=lambda r, t: ["hook"]
    )
    store = HazardStore(
        tmp_path / "h.db",
        config=HazardsConfig(),
        terminal="t1",
        branch="0101",
        clock=clock,
        ticketer=ticketing,
    )
    try:
        store.apply(_finding(clock, "/"))
        clock.advance(60)
        store.apply(_finding(clock, "/", Severity.CRITICAL))
        clock.advance(60)
        store.apply(_finding(clock, "/var"))
        store.act(1, Action.ACK, actor=who("alice"), note="on it")
        store.tick(1, 1, actor=who("alice"), note="done")
        store.act(1, Action.ASSIGN, actor=who("alice"), owner="hw-team")
        clock.advance(5 * 3600)
        store.check_deadlines()
        clock.advance(60)
        store.apply(_finding(clock, "/var", state="cleared"))
        record = store.get(1)
        assert isinstance(record, HazardRecord)
        records = store.records(full=True)
        out = {
            "get": _without_added(record.to_json()),
            "records": _without_added([r.to_json() for r in records]),
            "csv": _old_csv(export.to_csv(records)),
            "md": _old_markdown(export.to_markdown(records, terminal="t1", branch="0101", generated="now")),
            "json": json.dumps(
                _without_added(json.loads(export.to_json(records))),
                indent=2,
                sort_keys=True,
                ensure_ascii=False,
            ),
            "payloads": [
                _old_payload(r["payload"]) for r in store._db.read("SELECT payload FROM outbox ORDER BY id")
            ],
        }
    finally:
        store.close()
    assert json.dumps(out, indent=1, sort_keys=True) + "\n" == GOLDEN.read_text(encoding="utf-8")


def test_to_json_keeps_the_key_order_of_the_contract(tmp_path: Path) -> None:
    """Keys in the order DESIGN §3 lists them (then terminal, escalated_to, related and the closure
    fields), as the dict-based store wrote them; issue 20's keys after them."""
    clock = FakeClock()
    store = HazardStore(tmp_path / "h.db", config=HazardsConfig(), terminal="t1", branch="0101", clock=clock)
    try:
        store.apply(_finding(clock, "/"))
        record = store.get(1)
    finally:
        store.close()
    assert record is not None
    assert list(record.to_json()) == [
        "id", "fingerprint", "rule", "category", "severity", "state", "title", "subject", "terminal",
        "evidence", "first_seen", "last_seen", "occurrences", "owner", "deadline", "overdue",
        "escalation_level", "escalated_to", "recurrence_count", "related", "drill", "condition_active",
        "resolved_by", "resolved_at", "closed_by", "closed_at", "rectification", "history",
        "uid", "resolved_by_id", "closed_by_id",
    ]  # fmt: skip
