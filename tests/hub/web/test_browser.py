"""In a real headless Chromium: log in, filter, open a hazard, act on it, see the result; zh-CN renders."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.hub.web import browser
from tests.hub.web.support import PASSWORD, Web

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # Chromium: slow on a loaded machine


@pytest.fixture
def served(web: Web) -> Iterator[str]:
    """The pages on a real uvicorn (secure cookies as shipped: Chromium trusts 127.0.0.1)."""
    why = browser.missing()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    with browser.serve(web.app) as running:
        yield running.url


def test_an_officer_filters_opens_and_acknowledges_then_sees_it_applied(web: Web, served: str) -> None:
    """The whole path a branch IT officer takes, in Chinese, to a result the terminal confirmed."""
    with browser.chromium(locale="zh-CN") as context:
        page = context.new_page()
        browser.log_in(page, served, "olga", PASSWORD)
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert "隐患台账" in page.title()
        page.check("input[name=severity][value=critical]")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r"severity=critical"))
        rows = page.locator("table.ledger tbody tr")
        assert rows.count() == 2
        pk = web.pk("teller-01", 1)
        page.click(f"table.ledger a[href='/hazards/{pk}'] >> nth=1")
        page.wait_for_url(f"**/hazards/{pk}")
        page.fill("form.act-ack input[name=note]", "已到现场")
        page.click("form.act-ack button[type=submit]")
        page.wait_for_url(f"**/hazards/{pk}#actions")
        status = page.locator("#actions table tbody tr").first
        assert "待执行" in status.inner_text() and "已到现场" in status.inner_text()
        assert page.locator("form.act-ack").count() == 0  # no second acknowledgement offered
        [queued] = web.hub.store.actions(hazard_pk=pk, states=["pending"])
        assert queued.actor_id == "hub:olga"
        web.hub.store.complete_action("teller-01", queued.uid, applied=True, seq=12)
        page.reload()
        assert "终端已执行" in page.locator("#actions table tbody tr").first.inner_text()


def test_a_refusal_shows_the_terminals_reason(web: Web, served: str) -> None:
    """A refused action is shown refused, with the terminal's own words (English from Accept-Language)."""
    with browser.chromium(locale="en-US") as context:
        page = context.new_page()
        browser.log_in(page, served, "vera", PASSWORD)
        pk = web.pk("teller-01", 2)
        page.goto(f"{served}/hazards/{pk}")
        page.click("form.act-close button[type=submit]")
        page.wait_for_url(f"**/hazards/{pk}#actions")
        [queued] = web.hub.store.actions(hazard_pk=pk, states=["pending"])
        web.hub.store.complete_action(
            "teller-01", queued.uid, applied=False, reason="hazard #2: item 1 is not done"
        )
        page.reload()
        row = page.locator("#actions table tbody tr").first.inner_text()
        assert "Refused by the terminal" in row and "hazard #2: item 1 is not done" in row


def test_the_language_switch_and_a_viewer_without_forms(web: Web, served: str) -> None:
    """Vic switches to English with the header button; as a viewer he is offered no action."""
    with browser.chromium(locale="zh-CN") as context:
        page = context.new_page()
        browser.log_in(page, served, "vic", PASSWORD)
        page.click("header form[action='/locale'] button[value=en]")
        page.wait_for_load_state()
        assert page.evaluate("document.documentElement.lang") == "en"
        assert "Hazard ledger of" in page.inner_text("h1")
        page.goto(f"{served}/hazards/{web.pk('teller-01', 1)}")
        assert page.locator("form.act").count() == 0
        assert "You can view this hazard but not act on it." in page.inner_text("#actions")


def test_cookies_are_http_only_and_secure_in_the_browser(web: Web, served: str) -> None:
    """The session cookie cannot be read by page script and is Secure, SameSite=Lax."""
    with browser.chromium() as context:
        page = context.new_page()
        browser.log_in(page, served, "olga", PASSWORD)
        [cookie] = [c for c in context.cookies() if c["name"] == "__Host-sentinel-hub"]
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
        assert "sentinel-hub" not in page.evaluate("document.cookie")
