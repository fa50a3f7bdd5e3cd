"""The agent's hub client: pull the actions people queued in the hub, apply them, report back.

Outbound only (the terminal opens no port): every `poll_interval` the client sends a signed
`GET /agent/v1/actions` (the protocol is in docs/hub.md), applies each action through the hazard
store's own lifecycle with the hub user's identity (`hub:<user>`), and posts the result —
applied, or refused with the store's reason. The transition itself reaches the hub as an ordinary
ticket through the outbox.

Never twice: the action's id is written into the trail row its application writes
(`[hub action <id>]`, in the same transaction as the transition), and before applying an action
the client looks for that mark in the hazard's trail. A crash between applying and reporting, an
answer lost on the way, a lease that ran out: the action comes again, is found applied, and is
reported applied without being applied a second time. An offline terminal gets its actions when
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
from sentinel.hazards.changes import HazardError
from sentinel.hazards.lifecycle import Action
from sentinel.hazards.store import HazardStore
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.sinks.base import opener
from sentinel.tickets.sinks.webhook import SecretFile, sign

log = structlog.get_logger("sentinel.agent.hub_client")

LIFECYCLE = {
    "ack": Action.ACK,
    "start": Action.START,
    "resolve": Action.RESOLVE,
    "close": Action.CLOSE,
    "cancel": Action.CANCEL,
    "reopen": Action.REOPEN,
    "note": Action.NOTE,
    "assign": Action.ASSIGN,
}


def mark(action_id: str) -> str:
    """The trail's mark of one hub action."""
    return f"[hub action {action_id}]"


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
        """Apply one action through the store: ("applied" | "refused", reason, was it already)."""
        action_id = str(action["id"])
        verb = str(action.get("action") or "")
        hazard = _object(action.get("hazard"))
        local_id = hazard.get("id")
        actor = _object(action.get("actor"))
        by = str(actor.get("id") or "")
        if not by.startswith("hub:"):
            return "refused", "the action carries no hub identity", False
        if not isinstance(local_id, int):
            return "refused", "the action names no hazard", False
        record = self.store.get(local_id)
        if record is None:
            return "refused", f"no hazard #{local_id} on this terminal", False
        uid = getattr(record, "uid", None)  # issue 20's fleet-unique id, once records carry it
        if hazard.get("uid") and uid and hazard["uid"] != uid:
            return "refused", f"hazard #{local_id} is another record here (uid differs)", False
        tag = mark(action_id)
        if any(tag in h.note for h in record.history):
            return "applied", "", True
        note = str(action.get("note") or "").strip()
        if verb in ("cancel", "note") and not note:
            return "refused", f"{verb} needs a note", False
        text = f"{note} {tag}".strip()
        try:
            if verb == "tick":
                item = action.get("item")
                if not isinstance(item, int):
                    return "refused", "tick needs a rectification item", False
                self.store.tick(local_id, item, by=by, note=text)
            elif verb in LIFECYCLE:
                self.store.act(
                    local_id, LIFECYCLE[verb], by=by, note=text, owner=str(action.get("owner") or "")
                )
            else:
                return "refused", f"unknown action {verb!r}", False
        except HazardError as exc:
            log.info("hub_action_refused", action=action_id, hazard=local_id, verb=verb, reason=str(exc))
            return "refused", str(exc), False
        log.info("hub_action_applied", action=action_id, hazard=local_id, verb=verb, by=by)
        return "applied", "", False

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
