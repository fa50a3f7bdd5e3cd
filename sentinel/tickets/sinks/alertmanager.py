"""The Alertmanager sink: hazards as alerts through the API v2 (`POST /api/v2/alerts`).

Labels identify the alert: alertname (the rule), severity, category, terminal, branch, hazard_id
and drill. Annotations carry the title, a summary, the rectification measures, the owner and the
deadline. Alertmanager keeps its state in memory and resolves an alert whose `endsAt` passes, so:

- a firing hazard is sent without endsAt, and re-sent every `resend_interval` (shorter than
  Alertmanager's 5 min resolve_timeout) by `resend()`, which the dispatcher calls;
- a resolved, closed or cancelled hazard is sent with `endsAt` = now, which resolves it.

Every URL (an HA pair) gets every alert; a delivery counts when at least one peer accepted it —
the peers gossip, and the periodic re-send reaches a peer that was down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog

from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow
from sentinel.tickets.sinks.base import Outcome, opener, post

log = structlog.get_logger("sentinel.tickets.alertmanager")
ENDED = {"resolved", "closed", "cancelled"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def alert(ticket: dict[str, Any], *, now: float) -> dict[str, Any]:
    """One API v2 alert from one ticket payload."""
    h = ticket["hazard"]
    measures = "\n".join(
        f"{i['item']}. [{'x' if i['done'] else ' '}] {i['text']}" for i in h.get("rectification", [])
    )
    labels = {
        "alertname": h["rule"],
        "severity": h["severity"],
        "category": h["category"],
        "terminal": ticket["terminal"],
        "branch": ticket["branch"],
        "hazard_id": str(h["id"]),
        "drill": "true" if ticket.get("drill") else "false",
    }
    annotations = {
        "title": h["title"],
        "summary": f"{h['title']} (hazard #{h['id']}, {h['state']}, {h['occurrences']} occurrence(s))",
        "rectification": measures,
        "owner": h.get("owner") or "",
        "deadline": h.get("deadline") or "",
        "state": h["state"],
        "subject": h["subject"],
    }
    out: dict[str, Any] = {"labels": labels, "annotations": annotations, "startsAt": h["first_seen"]}
    if h["state"] in ENDED or ticket.get("transition") in ENDED:
        out["endsAt"] = _iso(now)
    return out


class AlertmanagerSink:
    """Posts alerts to every configured Alertmanager."""

    batched = False

    def __init__(self, config: SinkConfig, *, now: Callable[[], float] = time.time) -> None:
        self.name = config.name
        self.config = config
        self._opener = opener(config)
        self._now = now
        self.last_resend = 0.0

    def _post_all(self, alerts: list[dict[str, Any]]) -> Outcome:
        body = json.dumps(alerts, ensure_ascii=True).encode("ascii")
        headers = {**self.config.headers, "Content-Type": "application/json", "User-Agent": "sentinel-agent"}
        outcomes = [
            post(self._opener, url.rstrip("/") + "/api/v2/alerts", body, headers, self.config.timeout)
            for url in self.config.targets
        ]
        if any(o.kind == "delivered" for o in outcomes):
            for url, o in zip(self.config.targets, outcomes, strict=True):
                if o.kind != "delivered":
                    log.warning("alertmanager_peer_failed", sink=self.name, url=url, error=o.error)
            return outcomes[0] if outcomes[0].kind == "delivered" else Outcome("delivered")
        if all(o.kind == "dead" for o in outcomes):
            return outcomes[0]
        return Outcome("retry", "; ".join(o.error for o in outcomes))

    def send(self, row: OutboxRow) -> Outcome:
        """Post one hazard's alert (firing, or ended with endsAt)."""
        return self._post_all([alert(json.loads(row.payload), now=self._now())])

    def resend(self, payloads: Iterable[str]) -> Outcome | None:
        """Re-post every firing hazard so Alertmanager does not time them out."""
        alerts = [alert(json.loads(p), now=self._now()) for p in payloads]
        alerts = [a for a in alerts if "endsAt" not in a]
        self.last_resend = self._now()
        if not alerts:
            return None
        return self._post_all(alerts)

    def close(self) -> None:
        """Nothing to release."""
