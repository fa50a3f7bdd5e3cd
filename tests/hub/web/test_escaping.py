"""What terminals send is shown inert: HTML escaped, control and direction characters visible."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel.hub.ingest import Signed, parse_ticket
from sentinel.hub.testing import hazard_record, history_row, ticket
from sentinel.hub.web.render import plain, show
from tests.hub.web.support import Web

HOSTILE_FILE = '/srv/<script>alert("x")</script>\x1b[31mred\x1b[0m\u202egnp.exe'
HOSTILE_USER = "<img src=x onerror=alert(1)>\x07"


@pytest.fixture
def hostile(web: Web) -> int:
    """A hazard whose subject, title, evidence, owner and actor carry HTML and control characters."""
    now = web.hub.clock.time()
    record = hazard_record(
        "teller-01",
        77,
        state="open",
        at=now,
        rule="fim_critical_change",
        subject=HOSTILE_FILE,
        title=f"changed {HOSTILE_FILE}",
        category="data_security",
        uid="0190c0de-0000-7000-8000-0000000000aa",
    )
    record["owner"] = HOSTILE_USER
    record["evidence"] = [{"path": HOSTILE_FILE, "user": HOSTILE_USER, "sha256": "ab" * 32}]
    actor = {"source": "os", "id": f"os:{HOSTILE_USER}", "display": HOSTILE_USER}
    record["history"] = [history_row("raise", now, actor=actor, note=f"<b>{HOSTILE_FILE}</b>")]
    doc = ticket(record, transition="raised", history_id=700, at=now, actor=str(actor))
    web.hub.store.apply_tickets(
        [parse_ticket(doc, Signed("teller-01", doc["idempotency_key"], int(now)))], received_at=now
    )
    pk = web.hub.store.hazard_pk("teller-01", record["uid"])
    assert pk is not None
    return pk


def _assert_inert(html: str) -> None:
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "\x1b" not in html and "\u202e" not in html and "\x07" not in html
    assert "&lt;script&gt;" in html
    assert "\\x1b" in html and "\\u202e" in html


def test_the_hazard_page_escapes_everything_a_terminal_sent(web: Web, hostile: int) -> None:
    """Subject, title, evidence, owner, history actor and note: no live markup, no raw controls."""
    page = web.login("vic").get(f"/hazards/{hostile}")
    assert page.status_code == 200
    _assert_inert(page.text)
    assert "\\x07" in page.text


def test_the_ledger_and_terminal_pages_escape_too(web: Web, hostile: int) -> None:
    """The same record in the ledger table and on the terminal page."""
    client = web.login("vic")
    for path in ("/ledger?unit=HO", "/terminals/teller-01", "/board?unit=HO"):
        html = client.get(path).text
        assert "<script>" not in html and "\u202e" not in html and "\x1b" not in html
    _assert_inert(client.get("/ledger?unit=HO").text)


def test_the_title_attribute_is_plain_text(web: Web, hostile: int) -> None:
    """<title> carries the hazard title without markup or controls."""
    html = web.login("vic").get(f"/hazards/{hostile}").text
    title = html.split("<title>")[1].split("</title>")[0]
    assert "<" not in title.replace("&lt;", "") and "\x1b" not in title


def test_show_makes_invisible_characters_visible() -> None:
    """Unit: C0, C1, DEL, bidi overrides and zero-width characters become escapes."""
    out = str(show("a\x00b\x7fc\x85d\u200be\u2066f<g>"))
    for escape in ("\\x00", "\\x7f", "\\x85", "\\u200b", "\\u2066"):
        assert escape in out
    assert "&lt;g&gt;" in out
    assert str(show("line1\nline2", multiline=True)) == "line1<br>line2"
    assert "\\x0a" in str(show("line1\nline2"))
    assert plain("x\u202ey") == "x\\u202ey"


def test_long_values_are_cut(web: Any) -> None:
    """A 10,000-character value is shown to 2,000 with a mark."""
    out = str(show("x" * 10_000))
    assert out.count("x") == 2000 and "…" in out
