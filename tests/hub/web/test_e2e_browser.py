"""End to end in the browser: a terminal's store, a real hub process, two people in Chromium.

An officer-verifier (Olga) acknowledges, ticks the measure and marks the hazard rectified in the
browser; the terminal pulls each action (the agent's hub client), applies it through its own
lifecycle as hub:olga, and the hub shows it applied. Olga is then not offered "verify and
close" (four-eyes) and a hand-made close from her is refused; Vera closes. The terminal's own
store holds every transition with those identities.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.hub.web import browser
from tests.support.hubclient import Setup

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # Chromium, a hub process, argon2: slow when loaded
PASSWORD = "correct horse battery staple"


@pytest.fixture
def setup(tmp: Path) -> Iterator[Setup]:
    why = browser.missing()
    if why:
        if IN_CI:
            pytest.fail(why)
        pytest.skip(why)
    s = Setup(tmp)
    for name, display in (("olga", "Olga Officer"), ("vera", "Vera Verifier")):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sentinel.hub",
                "--config",
                str(s.config),
                "user",
                "add",
                name,
                "--display",
                display,
                "--role",
                "verifier",
                "--unit",
                "east",
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=120,
        )
    yield s
    s.close()


def _act(page: Any, base: str, pk: int, form: str, setup: Setup, hazard_id: int) -> None:
    """Click a form's button on the hazard page, let the terminal apply it, deliver the ticket back."""
    page.goto(f"{base}/hazards/{pk}")
    page.click(f"form.{form} button[type=submit]")
    page.wait_for_url(f"**/hazards/{pk}#actions")
    assert "astate-pending" in page.content()
    result = setup.client.poll_once()
    assert result.applied == 1, result
    setup.sync(hazard_id)
    page.reload()
    assert "astate-pending" not in page.content()


@pytest.mark.timeout(300)  # a real Chromium and a real hub process: slow on a loaded machine
def test_officer_rectifies_another_verifies_and_the_terminal_records_both(setup: Setup) -> None:
    """ack, tick, resolve by hub:olga; close by hub:vera; the same person cannot resolve and close."""
    hazard_id = setup.raise_hazard()
    pk = setup.pk(hazard_id)
    base = setup.process.url
    with browser.chromium(locale="zh-CN") as context:
        page = context.new_page()
        browser.log_in(page, base, "olga", PASSWORD)
        page.check("input[name=state][value=open]")
        page.click("form.filters button[type=submit]")
        page.click(f"table.ledger a[href='/hazards/{pk}'] >> nth=1")
        page.wait_for_url(f"**/hazards/{pk}")
        _act(page, base, pk, "act-ack", setup, hazard_id)
        page.click("section.measures form button[type=submit]")
        page.wait_for_url(f"**/hazards/{pk}#actions")
        assert setup.client.poll_once().applied == 1
        setup.sync(hazard_id)
        _act(page, base, pk, "act-resolve", setup, hazard_id)
        assert "已整改待验收" in page.inner_text(".headline")
        assert page.locator("form.act-close").count() == 0
        assert "须由他人验收销号" in page.inner_text("#actions")
        token = page.locator("input[name=csrf]").first.get_attribute("value")
        refused = page.request.post(
            f"{base}/hazards/{pk}/actions",
            form={"csrf": token or "", "action": "close"},
            headers={"Origin": base},
        )
        assert refused.status == 409
    with browser.chromium(locale="zh-CN") as context:
        page = context.new_page()
        browser.log_in(page, base, "vera", PASSWORD)
        _act(page, base, pk, "act-close", setup, hazard_id)
        assert "已验收销号" in page.inner_text(".headline")
    record = setup.store.get(hazard_id)
    assert record is not None and record.state == "closed"
    # who acted: the identities the terminal recorded (what four-eyes compares), not the display names
    trail = [(h.action, h.identity.id if h.identity else None) for h in record.history if h.action != "raise"]
    assert trail == [
        ("ack", "hub:olga"),
        ("check", "hub:olga"),
        ("resolve", "hub:olga"),
        ("close", "hub:vera"),
    ]
