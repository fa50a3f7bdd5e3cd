"""The agent's hub client: pull the actions people queued in the hub, apply them, report back.

Outbound only (the terminal opens no port): every `poll_interval` the client sends a signed
`GET /agent/v1/actions` (the protocol is in docs/hub.md), applies each action through the hazard
store's own lifecycle with the hub user's identity (`hub:<user>`), and posts the result —
applied, or refused with the store's reason. The transition itself reaches the hub as an ordinary
ticket through the outbox.

Never twice: the store keeps each action's outcome under its id in the same transaction as the
transition (HazardStore.apply_hub_action, issue 20). A crash between applying and reporting, an
answer lost on the way, a lease that ran out: the action comes again, the store returns the first
outcome without writing anything, and the client reports it. An offline terminal gets its actions when
it is back; nothing is lost because the hub keeps them pending.

"""

from __future__ import annotations

import json
import secrets as random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from sentinel import __version__
from sentinel.config.sections import HubClientConfig
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards.hub_actions import HubAction
from sentinel.hazards.store import HazardStore
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.sinks.base import opener
from sentinel.tickets.sinks.webhook import SecretFile, sign

log = structlog.get_logger("sentinel.agent.hub_client")

VERBS = {"tick": "check"}
"""The hub's action names where the store's differ (the hub says tick, the CLI check)."""


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll did."""

    applied: int = 0
    refused: int = 0
    already: int = 0
    reported: int = 0


class HubError(Exception):
    """The hub could not be reached or refused the request (the poll is retried later)."""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class HubClient:
    """Pulls and applies hub actions for one terminal."""

    def __init__(
        self,
        config: HubClientConfig,
        store: HazardStore,
        *,
        terminal: str,
        clock: Clock = SYSTEM_CLOCK,
        status: Callable[[], dict[str, Any]] | None = None,
        owns_store: bool = False,
    ) -> None:
        if not config.url or config.secret_file is None:
            raise ValueError("the hub client needs [hub] url and secret_file")
        self.config = config
        self.store = store
        self.terminal = terminal
        self.clock = clock
        self._status = status
        self._secrets = SecretFile(config.secret_file, "hub")
        self._opener = opener(
            SinkConfig(
                name="hub",
                type="webhook",
                url=config.url,
                unsigned=True,
                ca_file=config.ca_file,
                client_cert_file=config.client_cert_file,
                client_key_file=config.client_key_file,
                proxy=config.proxy,
            )
        )
        self._reported: set[str] = set()  # results the hub confirmed (this process)
        self._last_status = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._owns_store = owns_store

    # -- the protocol -------------------------------------------------------------------------

    def _request(self, method: str, target: str, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(doc, separators=(",", ":")).encode() if doc is not None else b""
        msg_id = random.token_hex(16)
        stamp = int(self.clock.time())
        content = f"{method} {target}\n".encode() + body
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"sentinel-agent/{__version__}",
            "sentinel-terminal": self.terminal,
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": " ".join(sign(s, msg_id, stamp, content) for s in self._secrets.current()),
        }
        request = urllib.request.Request(  # noqa: S310 - the configured hub URL
            self.config.url.rstrip("/") + target,
            data=body if method == "POST" else None,
            headers=headers,
            method=method,
        )
        try:
            with self._opener.open(request, timeout=self.config.timeout) as response:
                answer = response.read(1024 * 1024)
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode("utf-8", "replace")
            raise HubError(f"HTTP {exc.code}: {detail[:200]}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise HubError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
        try:
            parsed = json.loads(answer or b"{}")
        except ValueError:
            raise HubError("the hub's answer is not JSON") from None
        return parsed if isinstance(parsed, dict) else {}

    def poll_once(self) -> PollResult:
        """One pull: apply every action handed out, report each result. HubError if unreachable."""
        answer = self._request("GET", f"/agent/v1/actions?limit={self.config.max_actions}")
        applied = refused = already = reported = 0
        for action in answer.get("actions") or ():
            if not isinstance(action, dict) or not isinstance(action.get("id"), str):
                continue
            outcome, reason, was_there = self.apply(action)
            applied += outcome == "applied" and not was_there
            already += was_there
            refused += outcome == "refused"
            try:
                self._request(
                    "POST",
                    f"/agent/v1/actions/{action['id']}/result",
                    {"state": outcome, "reason": reason, "seq": None},
                )
                reported += 1
                self._reported.add(action["id"])
            except HubError as exc:  # applied (or refused) for good; reported when offered again
                log.warning("hub_result_not_reported", action=action["id"], error=str(exc))
        if self._status is not None and self.clock.time() - self._last_status >= self.config.status_interval:
            self._request("POST", "/agent/v1/status", self._status())
            self._last_status = self.clock.time()
        return PollResult(applied, refused, already, reported)

    # -- applying -----------------------------------------------------------------------------

    def apply(self, action: dict[str, Any]) -> tuple[str, str, bool]:
        """Apply one action through the store: ("applied" | "refused", reason, was it already).

        HazardStore.apply_hub_action (issue 20) runs it through the lifecycle, roles and four-eyes
        with the actor hub:<user>, and keeps its outcome under the action's id in the same
        transaction: a repeat returns the first outcome and writes nothing."""
        action_id = str(action["id"])
        hazard = _object(action.get("hazard"))
        actor = _object(action.get("actor"))
        by = str(actor.get("id") or "")
        if not by.startswith("hub:"):
            return "refused", "the action carries no hub identity", False
        uid = hazard.get("uid")
        if not isinstance(uid, str) or not uid:
            return "refused", "the action names no hazard uid", False
        verb = VERBS.get(str(action.get("action") or ""), str(action.get("action") or ""))
        item = action.get("item")
        try:
            result = self.store.apply_hub_action(
                HubAction(
                    action_id=action_id,
                    hazard_uid=uid,
                    action=verb,
                    user=by.removeprefix("hub:"),
                    display=str(actor.get("display") or ""),
                    note=str(action.get("note") or ""),
                    owner=str(action.get("owner") or ""),
                    item=item if isinstance(item, int) else None,
                )
            )
        except ValueError as exc:  # malformed: an unknown verb, no user
            return "refused", str(exc), False
        outcome = "applied" if result.outcome == "done" else "refused"
        log.info("hub_action_" + outcome, action=action_id, verb=verb, by=by, repeated=result.repeated)
        return outcome, result.message, result.repeated

    # -- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; back off (up to max_backoff) while the hub is unreachable."""
        delay = 0.0
        while not stop.wait(delay):
            try:
                self.poll_once()
                delay = self.config.poll_interval
            except HubError as exc:
                delay = min(self.config.max_backoff, max(self.config.poll_interval, delay * 2))
                log.warning("hub_unreachable", error=str(exc), retry_in=round(delay, 1))
            except Exception as exc:  # one bad poll must not end the client
                delay = self.config.poll_interval
                log.error("hub_poll_failed", error=f"{type(exc).__name__}: {exc}")

    def start(self) -> None:
        """Run in a thread of its own (an agent service: started after the collectors)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(self._stop,), name="hub-client", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop polling, wait for the thread, close the store it was given to own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._owns_store:
            self.store.close()
