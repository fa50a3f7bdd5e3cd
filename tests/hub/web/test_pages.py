"""What the pages show: the ledger and its filters, a hazard, a terminal, the board, actions' fate."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.hub.web.support import Web


def _rows(html: str) -> set[int]:
    """The hazard ids listed in a ledger table."""
    return {int(n) for n in re.findall(r'<td><a href="/hazards/(\d+)">#', html)}


@pytest.fixture
def vic(web: Web) -> Any:
    """The head office's viewer (sees the whole fleet)."""
    return web.login("vic")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=open", [("teller-01", 1), ("teller-01", 4), ("teller-01", 5), ("teller-11", 1)]),
        ("state=resolved&state=closed", [("teller-01", 2), ("teller-01", 3)]),
        ("severity=critical", [("teller-01", 1), ("kiosk-01", 1)]),
        ("category=terminal_equipment", [("teller-02", 1), ("kiosk-01", 1)]),
        ("overdue=yes", [("teller-01", 1), ("kiosk-01", 1)]),
        ("recurring=yes", [("teller-01", 4)]),
        ("drill=yes", [("teller-01", 5)]),
        ("terminal=teller-02", [("teller-02", 1), ("teller-02", 2)]),
        ("unit=0102", [("kiosk-01", 1)]),
        ("unit=west&severity=minor", [("teller-11", 1)]),
    ],
)
def test_the_ledger_filters(web: Web, vic: Any, query: str, expected: list[tuple[str, int]]) -> None:
    """Each filter (state, severity, category, overdue, recurring, drill, terminal, unit) narrows the rows."""
    page = vic.get(f"/ledger?{query}")
    assert page.status_code == 200
    assert _rows(page.text) == {web.pk(t, n) for t, n in expected}


def test_the_time_filter_bounds_last_seen(web: Web, vic: Any) -> None:
    """since/until are days in the hub's time zone; the 40-day-old closed record falls outside a week."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    today = datetime.fromtimestamp(web.hub.clock.time(), ZoneInfo("Asia/Shanghai")).date()
    week = vic.get(f"/ledger?since={today - timedelta(days=7)}&until={today}")
    assert web.pk("teller-01", 3) not in _rows(week.text)
    assert web.pk("teller-01", 1) in _rows(week.text)
    old = vic.get(f"/ledger?until={today - timedelta(days=30)}")
    assert _rows(old.text) == {web.pk("teller-01", 3)}
    assert vic.get("/ledger?since=yesterday").status_code == 400


def test_the_ledger_pages_with_a_cursor(web: Web, vic: Any) -> None:
    """With page_size rows a page, following "next" walks every hazard once."""
    seen: list[int] = []
    url = "/ledger?unit=HO"
    web.site.config = type(web.site.config)(**{**_fields(web.site.config), "page_size": 5})
    for _ in range(5):
        page = vic.get(url)
        seen += sorted(_rows(page.text), reverse=True)
        match = re.search(r'href="([^"]+)" rel="next"', page.text)
        if not match:
            break
        url = match.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(web.made["pk"].values())


def _fields(config: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def test_the_summary_counts_what_the_committee_asks_first(web: Web, vic: Any) -> None:
    """The tiles: not rectified, overdue, escalated, to verify, recurring, closed in 30 days."""
    page = vic.get("/ledger?unit=HO")
    found = re.findall(r'<span class="n">(\d+)</span>\s*([^<]+)</a>', page.text)
    tiles = {label.strip(): int(n) for n, label in found}
    expected = {"未完成整改": 6, "逾期": 2, "已督办升级": 2, "待验收": 1, "反复出现": 1, "近30天销号": 0}
    assert tiles == expected


def test_the_hazard_page_shows_evidence_checklist_history_tickets_related(web: Web, vic: Any) -> None:
    """Recurring teller-01 #4: its long-term item, history with identities, its tickets, related #3."""
    page = vic.get(f"/hazards/{web.pk('teller-01', 4)}").text
    assert "Long-term mechanism: find and remove the root cause" in page
    assert "长效机制" in page
    assert "recurs after hazards #3" in page
    assert f'href="/hazards/{web.pk("teller-01", 3)}"' in page  # related record
    tickets = web.hub.store.hazard(web.pk("teller-01", 4)).tickets
    assert tickets and all(t.key in page for t in tickets)  # each ticket, by its idempotency key
    resolved = vic.get(f"/hazards/{web.pk('teller-01', 2)}").text
    assert "Alice" in resolved and "(os:alice)" in resolved  # display and identity
    assert "cleaned /var/log" in resolved


def test_the_hazard_page_shows_pending_applied_and_refused_actions(web: Web, vic: Any) -> None:
    """Pending until the terminal confirms; refused with the terminal's reason."""
    pending = vic.get(f"/hazards/{web.pk('teller-02', 1)}").text
    assert "astate-pending" in pending and "Erin" in pending
    done = vic.get(f"/hazards/{web.pk('teller-11', 1)}").text
    assert "astate-applied" in done
    assert "astate-refused" in done and "hazard #1: role officer required" in done


def test_an_action_is_pending_then_applied_when_the_terminal_confirms(web: Web) -> None:
    """Olga acknowledges; the page says pending; the terminal's result turns it to applied."""
    olga = web.login("olga")
    pk = web.pk("teller-01", 1)
    page = web.act(olga, pk, "ack", note="on my way")
    assert page.status_code == 200
    assert "astate-pending" in page.text and "on my way" in page.text
    assert "ack" not in set(re.findall(r'name="action" value="([a-z]+)"', page.text))  # no second ack
    [queued] = web.hub.store.actions(hazard_pk=pk, states=["pending"])
    assert queued.actor_id == "hub:olga" and queued.requested_display == "Olga Officer"
    web.hub.store.complete_action("teller-01", queued.uid, applied=True, seq=12)
    assert "astate-applied" in olga.get(f"/hazards/{pk}").text


def test_cancel_needs_a_reason_and_assign_an_owner(web: Web) -> None:
    """Missing required fields are explained on the page (409), nothing is queued."""
    vera = web.login("vera")
    pk = web.pk("teller-01", 1)
    assert web.act(vera, pk, "cancel", note="").status_code == 409
    assert web.act(vera, pk, "assign", owner=" ").status_code == 409
    assert web.hub.store.actions(hazard_pk=pk, states=["pending"]) == []
    assert web.act(vera, pk, "cancel", note="scanner of the audit team").status_code == 200


def test_tick_queues_the_item_and_shows_it_pending(web: Web) -> None:
    """Ticking measure 1 of #4 queues it; the checklist shows it as pending."""
    olga = web.login("olga")
    pk = web.pk("teller-01", 4)
    page = web.act(olga, pk, "tick", item="1")
    assert page.status_code == 200
    assert "tick pending" in page.text or "勾选待终端确认" in page.text
    [queued] = web.hub.store.actions(hazard_pk=pk, states=["pending"])
    assert (queued.action, queued.item) == ("tick", 1)


def test_the_terminal_page_shows_its_facts_and_open_hazards(web: Web, vic: Any) -> None:
    """Last seen, version, baseline digest, chain head, open hazards, checks and drills."""
    detail = web.hub.store.terminal("teller-01")
    page = vic.get("/terminals/teller-01").text
    for fact in (detail.row.agent_version, detail.baseline_digest, detail.chain_hash, detail.store_id):
        if fact:
            assert fact in page
    assert f'href="/hazards/{web.pk("teller-01", 1)}"' in page
    assert "fim_tamper" in page and "USB storage blocked" in page


def test_the_terminals_list_and_its_silent_filter(web: Web, vic: Any) -> None:
    """Every terminal of the unit, and the silent ones alone."""
    page = vic.get("/terminals?unit=east").text
    assert all(name in page for name in ("teller-01", "teller-02", "kiosk-01"))
    assert "teller-11" not in page
    silent = {r.name for r in web.hub.store.terminals("east", silent_only=True)}
    page = vic.get("/terminals?unit=east&silent=yes").text
    for name in ("teller-01", "teller-02", "kiosk-01"):
        assert (f">{name}</a>" in page) == (name in silent)


def test_the_board_lists_overdue_most_late_first_and_escalations(web: Web, vic: Any) -> None:
    """kiosk-01 #1 (8 days late, level 2) comes before teller-01 #1 (2 days late, level 1)."""
    page = vic.get("/board?unit=HO").text
    late = page.split('id="late-h"')[1].split('id="esc-h"')[0]
    order = [int(n) for n in re.findall(r'<td><a href="/hazards/(\d+)">#', late)]
    assert order == [web.pk("kiosk-01", 1), web.pk("teller-01", 1)]


def test_unknown_things_are_404_and_bad_filters_are_dropped(web: Web, vic: Any) -> None:
    """No such hazard, terminal or unit; an unknown state value is ignored."""
    assert vic.get("/hazards/999999").status_code == 404
    assert vic.get("/hazards/abc").status_code == 404
    assert vic.get("/terminals/nope").status_code == 404
    assert vic.get("/ledger?unit=nowhere").status_code == 404
    assert vic.get("/ledger?state=exploded").status_code == 200


def test_the_checklist_shows_funding_and_the_re_inspector(web: Web, vic: Any) -> None:
    """The ledger practice's columns: each measure's funding and who re-inspected it (issue 20's fields)."""
    from sentinel.hub.ingest import Signed, parse_ticket
    from sentinel.hub.testing import hazard_record, history_row, ticket

    now = web.hub.clock.time()
    item = {
        "item": 1,
        "kind": "short_term",
        "text": "Replace the disk",
        "done": True,
        "done_by": "Dave",
        "done_at": "2027-01-15T08:00:00Z",
        "funding": "¥1,200 branch IT budget",
        "verified_by": "Vera",
        "verified_by_id": "hub:vera",
        "verified_at": "2027-01-15T09:00:00Z",
    }
    record = hazard_record(
        "teller-01",
        88,
        state="resolved",
        at=now,
        rectification=[item],
        uid="0190c0de-0000-7000-8000-0000000000bb",
    )
    record["history"] = [history_row("raise", now, actor="sentinel")]
    doc = ticket(record, transition="resolved", history_id=880, at=now, actor="sentinel")
    web.hub.store.apply_tickets(
        [parse_ticket(doc, Signed("teller-01", doc["idempotency_key"], int(now)))], received_at=now
    )
    pk = web.hub.store.hazard_pk("teller-01", record["uid"])
    page = vic.get(f"/hazards/{pk}").text
    assert "¥1,200 branch IT budget" in page and "整改资金" in page
    assert "Vera" in page and "(hub:vera)" in page and "复查人" in page
