"""The store's query API (what the pages read) on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.hub.model import Cursor, LedgerFilter
from sentinel.hub.store import HubActionError, UnknownUnit


def test_ledger_scopes_by_org_unit(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """Head office sees every hazard; a primary branch its branches'; a branch its terminals'."""
    hub, _ = sample_hub
    everything = hub.store.ledger("HO", limit=100).rows
    assert len(everything) == 9
    east = hub.store.ledger("east", limit=100).rows
    assert {r.terminal for r in east} == {"teller-01", "teller-02", "kiosk-01"}
    branch = hub.store.ledger("0101", limit=100).rows
    assert {r.terminal for r in branch} == {"teller-01", "teller-02"}
    assert {r.branch_id for r in hub.store.ledger("west").rows} == {"0201"}
    with pytest.raises(UnknownUnit):
        hub.store.ledger("nowhere")


def test_ledger_filters(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """State, severity, category, overdue, recurring, drill, terminal and time filters each narrow."""
    hub, _ = sample_hub
    ledger = hub.store.ledger
    assert {r.state for r in ledger(None, LedgerFilter(states=("open",))).rows} == {"open"}
    assert {r.severity for r in ledger(None, LedgerFilter(severities=("critical",))).rows} == {"critical"}
    assert {r.category for r in ledger(None, LedgerFilter(categories=("data_security",))).rows} == {
        "data_security"
    }
    overdue = ledger(None, LedgerFilter(overdue=True)).rows
    assert {(r.terminal, r.local_id) for r in overdue} == {("teller-01", 1), ("kiosk-01", 1)}
    assert all(r.overdue for r in overdue)
    assert [(r.terminal, r.local_id) for r in ledger(None, LedgerFilter(recurring=True)).rows] == [
        ("teller-01", 4)
    ]
    assert [(r.terminal, r.local_id) for r in ledger(None, LedgerFilter(drill=True)).rows] == [
        ("teller-01", 5)
    ]
    assert {r.terminal for r in ledger(None, LedgerFilter(terminal="kiosk-01")).rows} == {"kiosk-01"}
    now = hub.clock.time()
    recent = ledger(None, LedgerFilter(since=now - 86400 * 1.5)).rows
    assert recent and all(r.last_seen >= now - 86400 * 1.5 for r in recent)
    assert (
        len(ledger(None, LedgerFilter(states=("open",)), count=True).rows)
        == ledger(None, LedgerFilter(states=("open",)), count=True).total
    )


def test_ledger_keyset_pages_cover_everything_once(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """Pages of 2 walk the whole ledger newest first, each hazard exactly once."""
    hub, _ = sample_hub
    seen: list[int] = []
    cursor: Cursor | None = None
    while True:
        page = hub.store.ledger(None, limit=2, after=cursor)
        seen += [r.pk for r in page.rows]
        if page.next is None:
            break
        cursor = Cursor.decode(page.next.encode())
    assert len(seen) == len(set(seen)) == 9
    full = [r.pk for r in hub.store.ledger(None, limit=100).rows]
    assert seen == full


def test_hazard_detail_has_history_with_identities_tickets_actions_related(
    sample_hub: tuple[Any, dict[str, Any]],
) -> None:
    """The hazard page: full trail with who acted, the tickets received, queued actions, related."""
    hub, made = sample_hub
    detail = hub.store.hazard(made["pk"][("teller-01", 2)])
    assert [h.action for h in detail.history] == ["raise", "ack", "resolve"]
    assert detail.history[1].actor.id == "os:alice" and detail.history[1].actor.display == "Alice"
    assert [t.transition for t in detail.tickets] == ["raised", "acknowledged", "resolved"]
    assert detail.rectification[0]["done"] is True
    recurring = hub.store.hazard(made["pk"][("teller-01", 4)])
    assert [r.local_id for r in recurring.related] == [3]
    queued = hub.store.hazard(made["pk"][("teller-02", 1)])
    assert [a.action for a in queued.actions] == ["start"] and queued.row.pending_actions == 1


def test_terminals_and_terminal_detail(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """Terminal list per unit with open counts; detail with version, checks, drills, open hazards."""
    hub, _ = sample_hub
    rows = {t.name: t for t in hub.store.terminals("east")}
    assert set(rows) == {"teller-01", "teller-02", "kiosk-01"}
    assert rows["teller-01"].open_hazards == 3 and rows["teller-01"].enrolled
    detail = hub.store.terminal("teller-01")
    assert detail.row.agent_version == "0.test"
    assert {k["check"]: k["status"] for k in detail.checks} == {
        "password_policy": "pass",
        "usb_storage_blocked": "fail",
    }
    assert detail.drills[0]["scenario"] == "fim_tamper"
    assert {h.local_id for h in detail.open_hazards} == {1, 4, 5}
    assert hub.store.terminal("nobody") is None


def test_board_lists_overdue_and_escalated(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """The board: overdue most late first; escalated by level."""
    hub, _ = sample_hub
    board = hub.store.board(None)
    assert [(r.terminal, r.local_id) for r in board.overdue] == [("kiosk-01", 1), ("teller-01", 1)]
    assert [r.escalation_level for r in board.escalated] == [2, 1]
    assert board.by_level == {1: 1, 2: 1}
    assert [r.terminal for r in hub.store.board("west").overdue] == []


def test_enqueue_checks_lifecycle_and_four_eyes(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """The hub refuses at once what the terminal would: illegal moves, close by the resolver."""
    hub, made = sample_hub
    pk = made["pk"]
    with pytest.raises(HubActionError, match="cannot close"):
        hub.store.enqueue(pk[("teller-01", 1)], "close", user="bob")
    resolve = hub.store.enqueue(pk[("teller-01", 1)], "resolve", user="bob")
    assert resolve.state == "pending" and resolve.actor_id == "hub:bob"
    with pytest.raises(HubActionError, match="four-eyes"):
        hub.store.enqueue(pk[("teller-01", 1)], "close", user="bob")
    assert hub.store.enqueue(pk[("teller-01", 1)], "close", user="carol").state == "pending"
    with pytest.raises(HubActionError, match="needs a note"):
        hub.store.enqueue(pk[("teller-01", 4)], "cancel", user="bob")
    with pytest.raises(HubActionError, match="no rectification item 9"):
        hub.store.enqueue(pk[("teller-01", 4)], "tick", user="bob", item=9)
    assert hub.store.enqueue(pk[("teller-01", 4)], "tick", user="bob", item=1).item == 1
    with pytest.raises(HubActionError, match="unknown action"):
        hub.store.enqueue(pk[("teller-01", 4)], "delete", user="bob")


def test_summary_counts(sample_hub: tuple[Any, dict[str, Any]]) -> None:
    """Per-unit counts by state and severity, overdue, escalated, recurring."""
    hub, _ = sample_hub
    summary = hub.store.summary("HO")
    assert summary["by_state"]["open"] == 4
    assert summary["overdue"] == 2 and summary["escalated"] == 2 and summary["recurring"] == 1
