"""The hub's /metrics: valid exposition (promtool), bounded labels, the numbers operators alert on."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from starlette.testclient import TestClient

from sentinel.hub.app import create_app
from sentinel.hub.metrics import TOP_LAGGING

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the scrape")


def test_scrape_passes_promtool_and_counts_what_matters(
    sample_hub: tuple[Any, dict[str, Any]], promtool: str
) -> None:
    """Silent terminals, the queue, refusals and lag are there; promtool finds nothing to say."""
    hub, _ = sample_hub
    hub.store.touch_terminal("teller-01")
    hub.clock.advance(400)  # past the default 5 min: all but kiosk-01 (10 min) are silent
    hub.stats.refuse("bad_signature")
    with TestClient(create_app(hub, web=None)) as client:
        text = client.get("/metrics").text
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), (
        check.stdout + check.stderr
    )
    assert _value(text, 'sentinel_hub_terminals{state="enrolled"}') == 4
    assert _value(text, 'sentinel_hub_terminals{state="silent"}') == 3
    assert _value(text, 'sentinel_hub_actions{state="pending"}') == 1
    assert _value(text, 'sentinel_hub_actions{state="refused"}') == 1
    assert _value(text, 'sentinel_hub_refused_total{reason="bad_signature"}') == 1
    assert _value(text, "sentinel_hub_actions_oldest_pending_seconds") >= 400
    assert _value(text, "sentinel_hub_database_up") == 1
    assert text.count("sentinel_hub_terminal_lag_seconds{") <= TOP_LAGGING
