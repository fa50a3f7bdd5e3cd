"""The hazard store is the redaction boundary for evidence: what it records, and so every ticket
and hub message built from the record, carries no secret a detector or rule let through."""

from __future__ import annotations

import json
from collections.abc import Callable

from sentinel.core.redact import MASK
from sentinel.hazards.records import HazardRecord
from sentinel.hazards.store import HazardStore
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding

SECRET = "Zq!9sekret"


def test_secrets_never_reach_the_record_or_its_tickets(
    make_store: Callable[..., HazardStore], clock: FakeClock
) -> None:
    """Subject, title, evidence and rectification are masked before the record and outbox rows."""

    def sinks_for(_record: HazardRecord, _transition: str) -> list[str]:
        return ["hook"]

    store = make_store(sinks_for=sinks_for)
    store.apply(
        finding(
            clock,
            rule="process_attack_tool",
            subject=f"sshpass -p {SECRET} ssh teller@10.0.0.9",
            rectification=(f"Kill `mysql -uroot -p{SECRET}` and rotate the password",),
            cmdline=f"curl -H 'Authorization: Bearer {SECRET}' https://x?token={SECRET}",
            env=f"DB_PASSWORD={SECRET}",
            password=SECRET,
        )
    )
    record = store.get(1)
    assert record is not None
    stored = json.dumps(record.to_json())
    payloads = [r["payload"] for r in store._db.read("SELECT payload FROM outbox")]
    assert payloads, "the raise was ticketed"
    for text in (stored, *payloads):
        assert SECRET not in text
    evidence = record.evidence[-1]
    assert evidence["password"] == MASK
    assert evidence["env"] == f"DB_PASSWORD={MASK}"
    assert record.subject == f"sshpass -p {MASK} ssh teller@10.0.0.9"
