"""Ingest: the agents' signed `sentinel.ticket/1` webhooks, verified, parsed and group-committed.

A delivery is accepted only when all of these hold (else refused, counted by reason, logged
without the body or any secret):

- the body is at most `[ingest] max_body` bytes (413 `too_large`, refused before it is read whole);
- it is signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
  `webhook-signature: v1,<base64 HMAC-SHA256("id.timestamp.body")>`; 401 `unsigned`);
- the timestamp is within `[ingest] tolerance` of the hub's clock (401 `stale`: a replay of a
  captured request fails once the window has passed);
- the terminal (header `sentinel-terminal`, else the body's `terminal`) is in the inventory and
  enrolled (403 `unknown_terminal`), and one of its valid secrets made the signature
  (401 `bad_signature`);
- the body is a `sentinel.ticket/1` document whose `idempotency_key` is the `webhook-id` and
  whose `terminal` is the signing terminal (403 `other_terminal`; 400 `malformed`).

Inside the window, a repeated `webhook-id` is a duplicate: answered 200 with
`{"status": "duplicate"}` and changes nothing (the agent's retries carry the same id).

Accepted tickets are applied in batches (group commit: one transaction, one fsync, per up to
`batch_size` tickets gathered for `batch_wait`), and each request is answered after its batch is
committed — an acknowledged ticket is durable.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.core.model import clean_text
from sentinel.hub import fastjson
from sentinel.hub.inventory import Inventory
from sentinel.hub.keys import Keyring
from sentinel.hub.model import Actor, Ticket
from sentinel.hub.rows import parse_time
from sentinel.hub.store import HubStore
from sentinel.tickets import payload

log = structlog.get_logger("sentinel.hub")

TERMINAL_HEADER = "sentinel-terminal"
REFUSAL_REASONS = (
    "too_large",
    "unsigned",
    "stale",
    "unknown_terminal",
    "bad_signature",
    "other_terminal",
    "malformed",
    "replayed",
)
"""Why a request was refused (the bounded label of sentinel_hub_refused_total)."""

_KEY_HISTORY_ID = re.compile(r"-(\d+)$")


class Refused(Exception):
    """A request the hub will not accept: HTTP status and a reason from REFUSAL_REASONS."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def sign(secret: bytes, msg_id: str, timestamp: int, content: bytes) -> str:
    """One Standard Webhooks signature: v1,<base64 HMAC-SHA256 of "id.timestamp.content">."""
    digest = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_matches(
    secrets: Sequence[bytes], msg_id: str, timestamp: int, content: bytes, header: str
) -> bool:
    """Whether any `v1,` signature in the header was made by any of the secrets (constant time)."""
    offered: list[bytes] = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not offered:
        return False
    ok = False
    for secret in secrets:
        expected = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + content, hashlib.sha256).digest()
        for candidate in offered:
            ok |= hmac.compare_digest(expected, candidate)
    return ok


@dataclass(frozen=True, slots=True)
class Signed:
    """What the signature headers said, once checked."""

    terminal: str
    msg_id: str
    timestamp: int


class Verifier:
    """Checks Standard Webhooks signatures against the terminal's enrolled secrets."""

    def __init__(
        self,
        keyring: Keyring,
        inventory: Callable[[], Inventory],
        *,
        tolerance: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.keyring = keyring
        self._inventory = inventory
        self.tolerance = tolerance
        self.clock = clock

    def verify(self, headers: Mapping[str, str], content: bytes, terminal: str | None) -> Signed:
        """Check headers and signature over `content`; Refused says why not."""
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        signature = headers.get("webhook-signature", "")
        if not (msg_id and stamp and signature):
            raise Refused(401, "unsigned", "missing webhook-id, webhook-timestamp or webhook-signature")
        if len(msg_id) > 200:
            raise Refused(400, "malformed", "webhook-id longer than 200 characters")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise Refused(401, "unsigned", "webhook-timestamp is not a number") from None
        if abs(self.clock.time() - timestamp) > self.tolerance:
            raise Refused(401, "stale", f"webhook-timestamp outside the {self.tolerance:g} s window")
        name = headers.get(TERMINAL_HEADER) or terminal or ""
        if not name or self._inventory().terminal(name) is None:
            raise Refused(403, "unknown_terminal", "terminal not in the inventory")
        secrets = self.keyring.secrets(name)
        if not secrets:
            raise Refused(403, "unknown_terminal", "terminal not enrolled")
        if not signature_matches(secrets, msg_id, timestamp, content, signature):
            raise Refused(401, "bad_signature", "signature does not match the terminal's secret")
        return Signed(name, msg_id, timestamp)


def parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a ticket body; Refused(400) otherwise (orjson when installed: 3x faster)."""
    try:
        doc = fastjson.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "malformed", "the body is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    return doc


def parse_ticket(doc: dict[str, Any], signed: Signed) -> Ticket:
    """A Ticket from a verified `sentinel.ticket/1` document."""
    if doc.get("schema") != payload.SCHEMA:
        raise Refused(400, "malformed", f"schema is not {payload.SCHEMA}")
    if doc.get("terminal") != signed.terminal:
        raise Refused(403, "other_terminal", "the ticket names another terminal than the one that signed it")
    key = doc.get("idempotency_key")
    if key != signed.msg_id:
        raise Refused(400, "malformed", "idempotency_key differs from webhook-id")
    hazard = doc.get("hazard")
    if not isinstance(hazard, dict) or not isinstance(hazard.get("id"), int):
        raise Refused(400, "malformed", "hazard record missing")
    if hazard.get("terminal") not in (None, signed.terminal):
        raise Refused(403, "other_terminal", "the hazard belongs to another terminal")
    store_id = str(doc.get("store_id") or "")
    local_id = int(hazard["id"])
    uid = str(hazard.get("uid") or f"{store_id or 'local'}:{local_id}")
    chain = _object(doc.get("chain"))
    seq = chain.get("seq") if isinstance(chain.get("seq"), int) else None
    if seq is None:  # agents before issue 20: the history id ends the idempotency key
        match = _KEY_HISTORY_ID.search(str(key))
        seq = int(match.group(1)) if match else 0
    sent_for = _object(doc.get("sent_for"))
    actor = Actor.from_json(doc.get("transition_actor") or sent_for.get("actor"))
    actor = Actor(clean_text(actor.id), clean_text(actor.display), clean_text(actor.source))
    return Ticket(
        key=str(key),
        terminal=signed.terminal,
        transition=clean_text(str(doc.get("transition") or ""))[:32],
        seq=int(seq),
        uid=clean_text(uid)[:64],
        local_id=local_id,
        store_id=clean_text(store_id)[:64],
        record=hazard,
        actor=actor,
        at=parse_time(sent_for.get("at")),
        note=clean_text(str(sent_for.get("note") or "")),
        agent_version=clean_text(str(doc.get("agent_version") or ""))[:64],
        chain_hash=clean_text(str(chain.get("hash") or ""))[:128],
        baseline_digest=clean_text(str(doc.get("baseline_digest") or ""))[:128],
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class IngestStats:
    """Process-local counters for /metrics (each hub replica is scraped on its own)."""

    LAG_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accepted = 0
        self.duplicates = 0
        self.refused: Counter[str] = Counter(dict.fromkeys(REFUSAL_REASONS, 0))
        self.batches = 0
        self.lag_counts = [0] * (len(self.LAG_BUCKETS) + 1)
        self.lag_sum = 0.0

    def refuse(self, reason: str) -> None:
        """Count one refused request."""
        with self._lock:
            self.refused[reason] += 1

    def applied(self, tickets: Sequence[Ticket], new: Sequence[bool], now: float) -> None:
        """Count one committed batch."""
        with self._lock:
            self.batches += 1
            for ticket, is_new in zip(tickets, new, strict=True):
                if not is_new:
                    self.duplicates += 1
                    continue
                self.accepted += 1
                if ticket.at is not None:
                    lag = max(0.0, now - ticket.at)
                    self.lag_sum += lag
                    index = next(
                        (i for i, b in enumerate(self.LAG_BUCKETS) if lag <= b), len(self.LAG_BUCKETS)
                    )
                    self.lag_counts[index] += 1

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy."""
        with self._lock:
            return {
                "accepted": self.accepted,
                "duplicates": self.duplicates,
                "refused": dict(self.refused),
                "batches": self.batches,
                "lag_counts": list(self.lag_counts),
                "lag_sum": self.lag_sum,
            }


class BadTicket(Exception):
    """A verified ticket the store cannot hold (answered 400: the agent dead-letters it)."""


class IngestWriter:
    """Group commit: requests wait on a future while one task applies batches in a thread."""

    def __init__(self, store: HubStore, stats: IngestStats, *, batch_size: int, batch_wait: float) -> None:
        self.store = store
        self.stats = stats
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self._queue: asyncio.Queue[tuple[Ticket, asyncio.Future[bool]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the batching task on the running loop."""
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="hub-ingest-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, ticket: Ticket) -> bool:
        """Apply one ticket with the next batch; True if its transition was new."""
        if self._queue is None:
            raise RuntimeError("the ingest writer is not running")
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((ticket, future))
        return await future

    def _apply(self, tickets: list[Ticket], now: float) -> list[bool | Exception]:
        """Apply a batch; if it fails on its data, apply its tickets one by one so that one bad
        ticket (refused for good) never holds back the others. Database outages propagate."""
        try:
            return list(self.store.apply_tickets(tickets, received_at=now))
        except sa.exc.OperationalError:
            raise
        except (sa.exc.SQLAlchemyError, ValueError, TypeError) as exc:
            if len(tickets) == 1:
                log.error("hub_ticket_unstorable", terminal=tickets[0].terminal, error=type(exc).__name__)
                return [BadTicket(str(type(exc).__name__))]
        out: list[bool | Exception] = []
        for ticket in tickets:
            out += self._apply([ticket], now)
        return out

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            if self.batch_wait > 0 and queue.qsize() < self.batch_size:
                await asyncio.sleep(self.batch_wait)
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            tickets = [t for t, _ in batch]
            try:
                now = self.store.clock.time()
                new = await loop.run_in_executor(None, functools.partial(self._apply, tickets, now))
                self.stats.applied(tickets, [n is True for n in new], now)
                for (_, future), outcome in zip(batch, new, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
            except Exception as exc:  # the database is down or full: every request of the batch retries
                log.error("hub_ingest_batch_failed", tickets=len(batch), error=f"{type(exc).__name__}: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            finally:
                for _ in batch:
                    queue.task_done()
