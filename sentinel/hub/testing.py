"""Test and bench helpers for the hub: sample org and hazards, tickets, signing, a private PostgreSQL.

- SAMPLE_INVENTORY: head office, two primary branches, three branches, four terminals.
- hazard_record()/ticket(): `sentinel.ticket/1` documents shaped exactly like the agent's.
- signed_headers()/agent_headers(): Standard Webhooks headers for ingest and the agent API.
- make_hub(): a Hub on a database URL with the sample inventory (fake clock welcome).
- load_sample(): the sample hazards in every state, overdue, escalated, recurring, a drill, actions.
- PostgresServer: Debian's PostgreSQL in a temporary directory on a free loopback port (run as
  the `postgres` account when we are root: the server refuses to run as root).

Size: sample fleet data plus three test servers (a private PostgreSQL, a hub process, a load
balancer) that the backend, the pages and the bench share.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentinel.core import timefmt
from sentinel.core.clock import Clock
from sentinel.hazards.identity import Actor
from sentinel.hazards.records import HazardRecord
from sentinel.hub.config import HubConfig, build
from sentinel.hub.db import Database
from sentinel.hub.inventory import Inventory
from sentinel.tickets import payload

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MASTER_KEY = b"k" * 32
"""A fixed master key for tests (never used outside them)."""

SAMPLE_INVENTORY: dict[str, Any] = {
    "head_office": {"id": "HO", "name": "Head office"},
    "primary_branches": [
        {"id": "east", "name": "East primary branch"},
        {"id": "west", "name": "West primary branch"},
    ],
    "branches": [
        {"id": "0101", "name": "Riverside", "primary": "east"},
        {"id": "0102", "name": "Harbour", "primary": "east", "silent_after": "10m"},
        {"id": "0201", "name": "Hillside", "primary": "west"},
    ],
    "terminals": [
        {"name": "teller-01", "branch": "0101"},
        {"name": "teller-02", "branch": "0101"},
        {"name": "kiosk-01", "branch": "0102"},
        {"name": "teller-11", "branch": "0201"},
    ],
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso(ts: float | None) -> str | None:
    """RFC 3339 UTC, as the agent writes it."""
    return timefmt.iso(ts)


def hazard_record(
    terminal: str,
    hazard_id: int,
    *,
    state: str = "open",
    at: float,
    severity: str = "major",
    category: str = "stability",
    rule: str = "disk_full",
    subject: str = "/var",
    title: str | None = None,
    deadline: float | None = None,
    escalation_level: int = 0,
    drill: bool = False,
    history: Sequence[dict[str, Any]] = (),
    rectification: Sequence[dict[str, Any]] | None = None,
    resolved_by: str | None = None,
    closed_by: str | None = None,
    related: Sequence[int] = (),
    uid: str | None = None,
) -> dict[str, Any]:
    """A hazard record with the keys HazardStore._record writes (DESIGN §3)."""
    items = (
        list(rectification)
        if rectification is not None
        else [
            {
                "item": 1,
                "kind": "short_term",
                "text": "Free space on the volume",
                "done": False,
                "done_by": None,
                "done_at": None,
            },
        ]
    )
    record: dict[str, Any] = {
        "id": hazard_id,
        "fingerprint": hashlib.sha256(f"{rule}\x1f{terminal}\x1f{subject}".encode()).hexdigest()[:24],
        "rule": rule,
        "category": category,
        "severity": severity,
        "state": state,
        "title": title or f"{rule} on {subject}",
        "subject": subject,
        "terminal": terminal,
        "evidence": [{"at": iso(at), "severity": severity, "used_ratio": 0.97}],
        "first_seen": iso(at),
        "last_seen": iso(at),
        "occurrences": 1,
        "owner": "branch-it",
        "deadline": iso(deadline),
        "overdue": False,
        "escalation_level": escalation_level,
        "escalated_to": "branch-it",
        "recurrence_count": 0,
        "related": list(related),
        "drill": drill,
        "condition_active": True,
        "resolved_by": resolved_by,
        "resolved_at": iso(at) if resolved_by else None,
        "closed_by": closed_by,
        "closed_at": iso(at) if closed_by else None,
        "rectification": items,
        "history": list(history),
    }
    record["uid"] = uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"sentinel-test:{terminal}:{hazard_id}"))
    return record


def history_row(
    action: str,
    at: float,
    *,
    actor: Any = "sentinel",
    from_state: str | None = None,
    to_state: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One history row as the record carries it."""
    return {"at": iso(at), "actor": actor, "action": action, "from": from_state, "to": to_state, "note": note}


def ticket(
    record: dict[str, Any],
    *,
    transition: str,
    history_id: int,
    at: float,
    actor: str = "sentinel",
    note: str = "",
    branch: str = "",
    version: str = "0.test",
) -> dict[str, Any]:
    """A `sentinel.ticket/1` document for one transition (the agent's own builder)."""
    terminal = record["terminal"]
    key = payload.idempotency_key(record["uid"], history_id)
    doc = payload.build(
        record=HazardRecord.from_json(record),
        transition=transition,
        key=key,
        terminal=terminal,
        branch=branch,
        agent_version=version,
        actor=_actor(actor),
        at=at,
        note=note,
        store_id=f"store-{terminal}",
    )
    # what an agent after issue 20 sends: additive fields (uid, actor objects) the typed record
    # of this version does not carry yet
    doc["hazard"] = {**record, "history": list(record.get("history", []))[-payload.HISTORY_IN_TICKET :]}
    return doc


def _actor(text: str) -> Actor:
    source, _, name = text.partition(":")
    if name and source in ("os", "hub"):
        return Actor(source, text, name)  # type: ignore[arg-type]
    return Actor("agent", "agent", text or "sentinel")


def encode(doc: dict[str, Any]) -> bytes:
    """The body exactly as the agent sends it."""
    return payload.encode(doc).encode("utf-8")


def sign(secret: bytes, msg_id: str, timestamp: int, content: bytes) -> str:
    """v1,<base64 HMAC-SHA256 of "id.timestamp.content">."""
    digest = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def secret_bytes(whsec: str) -> bytes:
    """The raw key of a `whsec_…` secret."""
    return base64.b64decode(whsec.removeprefix("whsec_"))


def signed_headers(
    secret: bytes, body: bytes, *, msg_id: str, timestamp: int, terminal: str | None = None
) -> dict[str, str]:
    """Headers of one signed ingest POST, as the agent's webhook sink sends them."""
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
    if terminal:
        headers["sentinel-terminal"] = terminal
    return headers


def agent_headers(
    secret: bytes,
    terminal: str,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    timestamp: int,
    msg_id: str | None = None,
) -> dict[str, str]:
    """Headers of one signed agent API request (see sentinel.hub.actions)."""
    msg_id = msg_id or uuid.uuid4().hex
    content = f"{method.upper()} {target}\n".encode() + body
    return {
        "content-type": "application/json",
        "sentinel-terminal": terminal,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, content),
    }


def hub_config(tmp: Path, url: str = "", **sections: dict[str, Any]) -> HubConfig:
    """A HubConfig for a temporary state directory (SQLite there unless `url`)."""
    data: dict[str, Any] = {"hub": {"state_dir": str(tmp), "master_key_file": str(tmp / "master.key")}}
    if url:
        data["database"] = {"url": url}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return build(data)


def make_hub(
    tmp: Path,
    url: str = "",
    *,
    clock: Clock | None = None,
    inventory: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Any:
    """A migrated Hub with the sample inventory (or `inventory`) and the test master key."""
    # start-up time: test helpers load the hub only when a test builds one
    from sentinel.core.clock import SYSTEM_CLOCK
    from sentinel.hub.hub import Hub

    config = hub_config(tmp, url, **sections)
    inv = Inventory.from_data(inventory if inventory is not None else SAMPLE_INVENTORY)
    hub = Hub(config, clock=clock or SYSTEM_CLOCK, inventory=inv, master_key=MASTER_KEY)
    hub.migrate()
    return hub


def load_sample(hub: Any, *, now: float | None = None) -> dict[str, Any]:
    """Fill a hub with sample hazards (via the same path as ingest) and return what it made.

    teller-01: #1 open overdue critical (escalated 1), #2 resolved by os:alice, #3 closed,
               #4 recurring (long-term item), #5 a drill
    teller-02: #1 acknowledged, #2 cancelled
    kiosk-01:  #1 rectifying, overdue (escalated 2)
    teller-11: #1 open minor data_security
    Every terminal is enrolled; one pending action, one applied, one refused; drills and checks.
    """
    # start-up time: test helpers load the hub only when a test builds one
    from sentinel.hub.ingest import Signed, parse_ticket

    now = hub.clock.time() if now is None else now
    secrets = {
        name: hub.keyring.enroll(name, hub.inventory, by="test") for name in sorted(hub.inventory.terminals)
    }
    day = 86400.0
    made: list[dict[str, Any]] = []

    def emit(
        record: dict[str, Any],
        transitions: Sequence[tuple[str, str, str | None, str | None, Any, str]],
        start: float,
        first_history: int,
    ) -> None:
        rows: list[dict[str, Any]] = []
        for n, (transition, action, src, dst, actor, text) in enumerate(transitions):
            at = start + n * 600
            rows.append(history_row(action, at, actor=actor, from_state=src, to_state=dst, note=text))
            rec = dict(record, history=list(rows), last_seen=iso(at))
            if n < len(transitions) - 1:
                rec["state"] = dst or record["state"]
            if transition:
                made.append(
                    ticket(rec, transition=transition, history_id=first_history + n, at=at, actor=str(actor))
                )

    t = "teller-01"
    emit(
        hazard_record(
            t,
            1,
            state="open",
            at=now - 3 * day,
            severity="critical",
            category="cyber_attack",
            rule="ssh_bruteforce",
            subject="203.0.113.9",
            deadline=now - 2 * day,
            escalation_level=1,
        ),
        [
            ("raised", "raise", None, "open", "sentinel", "raised by rule ssh_bruteforce"),
            ("escalated", "escalate", None, None, "sentinel", "overdue: escalated to level 1"),
        ],
        now - 3 * day,
        10,
    )
    emit(
        hazard_record(
            t,
            2,
            state="resolved",
            at=now - 2 * day,
            rule="disk_full",
            subject="/var",
            resolved_by="os:alice",
            deadline=now + 5 * day,
            rectification=[
                {
                    "item": 1,
                    "kind": "short_term",
                    "text": "Free space",
                    "done": True,
                    "done_by": "os:alice",
                    "done_at": iso(now - day),
                }
            ],
        ),
        [
            ("raised", "raise", None, "open", "sentinel", ""),
            (
                "acknowledged",
                "ack",
                "open",
                "acknowledged",
                {"source": "os", "id": "os:alice", "display": "Alice"},
                "",
            ),
            (
                "resolved",
                "resolve",
                "acknowledged",
                "resolved",
                {"source": "os", "id": "os:alice", "display": "Alice"},
                "cleaned /var/log",
            ),
        ],
        now - 2 * day,
        20,
    )
    emit(
        hazard_record(
            t,
            3,
            state="closed",
            at=now - 40 * day,
            rule="usb_storage",
            subject="usb 0781:5567",
            category="data_security",
            resolved_by="os:alice",
            closed_by="hub:bob",
        ),
        [
            ("raised", "raise", None, "open", "sentinel", ""),
            ("resolved", "resolve", "open", "resolved", "os:alice", ""),
            (
                "closed",
                "close",
                "resolved",
                "closed",
                {"source": "hub", "id": "hub:bob", "display": "Bob"},
                "verified",
            ),
        ],
        now - 40 * day,
        30,
    )
    emit(
        hazard_record(
            t,
            4,
            state="open",
            at=now - day,
            rule="service_down",
            subject="cups",
            rectification=[
                {
                    "item": 1,
                    "kind": "short_term",
                    "text": "Restart cups",
                    "done": False,
                    "done_by": None,
                    "done_at": None,
                },
                {
                    "item": 2,
                    "kind": "long_term",
                    "text": "Long-term mechanism: find and remove the root cause",
                    "done": False,
                    "done_by": None,
                    "done_at": None,
                },
            ],
            related=[3],
        ),
        [("raised", "raise", None, "open", "sentinel", "recurs after hazards #3")],
        now - day,
        40,
    )
    emit(
        hazard_record(
            t, 5, state="open", at=now - 3600, rule="drill_probe", subject="fim", drill=True, severity="minor"
        ),
        [("raised", "raise", None, "open", "sentinel", "drill")],
        now - 3600,
        50,
    )
    t = "teller-02"
    emit(
        hazard_record(
            t,
            1,
            state="acknowledged",
            at=now - day,
            rule="cpu_hot",
            subject="package",
            category="terminal_equipment",
            deadline=now + day,
        ),
        [
            ("raised", "raise", None, "open", "sentinel", ""),
            ("acknowledged", "ack", "open", "acknowledged", "os:carol", ""),
        ],
        now - day,
        10,
    )
    emit(
        hazard_record(
            t,
            2,
            state="cancelled",
            at=now - 5 * day,
            rule="new_listener",
            subject="tcp/8080",
            category="it_change",
        ),
        [
            ("raised", "raise", None, "open", "sentinel", ""),
            ("cancelled", "cancel", "open", "cancelled", "os:carol", "false positive: test server"),
        ],
        now - 5 * day,
        20,
    )
    t = "kiosk-01"
    emit(
        hazard_record(
            t,
            1,
            state="rectifying",
            at=now - 10 * day,
            rule="disk_smart",
            subject="sda",
            category="terminal_equipment",
            severity="critical",
            deadline=now - 8 * day,
            escalation_level=2,
        ),
        [
            ("raised", "raise", None, "open", "sentinel", ""),
            ("rectifying", "start", "open", "rectifying", "os:dave", "ordered a disk"),
            ("escalated", "escalate", None, None, "sentinel", "level 2"),
        ],
        now - 10 * day,
        10,
    )
    t = "teller-11"
    emit(
        hazard_record(
            t,
            1,
            state="open",
            at=now - 7200,
            rule="mass_rename",
            subject="/srv/share",
            category="data_security",
            severity="minor",
            deadline=now + 2 * day,
        ),
        [("raised", "raise", None, "open", "sentinel", "")],
        now - 7200,
        10,
    )
    verified = [parse_ticket(doc, Signed(doc["terminal"], doc["idempotency_key"], int(now))) for doc in made]
    hub.store.apply_tickets(verified, received_at=now)
    pk = {(r.terminal, r.local_id): r.pk for r in hub.store.ledger(None, limit=100).rows}
    pending = hub.store.enqueue(pk[("teller-02", 1)], "start", user="erin", display="Erin")
    applied = hub.store.enqueue(pk[("teller-11", 1)], "ack", user="erin")
    hub.store.complete_action("teller-11", applied.uid, applied=True, seq=11)
    refused = hub.store.enqueue(pk[("teller-11", 1)], "note", user="erin", note="please check")
    hub.store.complete_action(
        "teller-11", refused.uid, applied=False, reason="hazard #1: role officer required"
    )
    hub.store.record_status(
        "teller-01",
        drills=[
            {
                "key": "s1:1",
                "scenario": "fim_tamper",
                "started_at": now - 3600,
                "finished_at": iso(now - 3500),
                "passed": True,
                "trigger": "schedule",
                "stages": [
                    {"stage": "detect", "passed": True, "seconds": 1.2},
                    {"stage": "ticket", "passed": True, "seconds": 2.0},
                ],
            }
        ],
        checks_=[
            {"check": "password_policy", "status": "pass", "at": now - 600, "title": "Password policy"},
            {
                "check": "usb_storage_blocked",
                "status": "fail",
                "at": now - 600,
                "severity": "major",
                "category": "data_security",
                "title": "USB storage blocked",
            },
        ],
    )
    hub.store.record_status(
        "kiosk-01",
        drills=[],
        checks_=[{"check": "password_policy", "status": "fail", "at": now - 600, "title": "Password policy"}],
    )
    return {
        "secrets": secrets,
        "pk": pk,
        "tickets": made,
        "actions": {"pending": pending, "applied": applied, "refused": refused},
    }


class PostgresServer:
    """A private PostgreSQL 15 (Debian's package) in a temporary directory on 127.0.0.1."""

    def __init__(self, *, fsync: bool = False, port: int | None = None) -> None:
        self.port = port or free_port()
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="sentinel-hub-pg-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.dir, account.pw_uid, account.pw_gid)
            self._as_user = [
                "setpriv",
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--init-groups",
                "--",
            ]

    @staticmethod
    def available() -> str | None:
        """None if the server binaries are here, else what to install."""
        if (PG_BIN / "postgres").exists() and (PG_BIN / "initdb").exists():
            return None
        return "postgresql (Debian's package: /usr/lib/postgresql/15/bin)"

    def start(self, timeout: float = 60.0) -> None:
        """initdb, start, wait until it accepts connections."""
        initdb = [
            *self._as_user,
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "hub",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]
        subprocess.run(initdb, check=True, capture_output=True, timeout=timeout)  # noqa: S603 - Debian's binaries
        log = open(self.dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.process = subprocess.Popen(  # noqa: S603 - Debian's PostgreSQL binaries, fixed arguments
            [
                *self._as_user,
                str(PG_BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.dir}",
                "-c",
                f"fsync={'on' if self.fsync else 'off'}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(  # noqa: S603 - Debian's pg_isready
                [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited: {(self.dir / 'server.log').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.1)
        raise RuntimeError("postgres did not become ready")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database."""
        return f"postgresql+psycopg://hub@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh database; its URL."""
        import sqlalchemy as sa

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown, then remove the directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown (SIGTERM waits for clients)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def database_for(url: str) -> Database:
    """A Database on a URL (tests)."""
    return Database(url, pool_size=4)


def load_json(text: str) -> Any:
    """json.loads (kept here so tests read responses one way)."""
    return json.loads(text)


def write_inventory(path: Path, inventory: dict[str, Any]) -> Path:
    """Write an inventory dict (SAMPLE_INVENTORY's shape) as the TOML file the hub reads."""
    ho = inventory.get("head_office", {"id": "HO", "name": "Head office"})
    lines = ["[head_office]", f"id = {json.dumps(ho['id'])}", f"name = {json.dumps(ho['name'])}"]
    for p in inventory.get("primary_branches", ()):
        lines += [
            "",
            "[[primary_branches]]",
            f"id = {json.dumps(p['id'])}",
            f"name = {json.dumps(p.get('name', p['id']))}",
        ]
    for b in inventory.get("branches", ()):
        lines += [
            "",
            "[[branches]]",
            f"id = {json.dumps(b['id'])}",
            f"primary = {json.dumps(b['primary'])}",
            f"name = {json.dumps(b.get('name', b['id']))}",
        ]
        if b.get("silent_after"):
            lines.append(f"silent_after = {json.dumps(b['silent_after'])}")
    for t in inventory.get("terminals", ()):
        lines += [
            "",
            "[[terminals]]",
            f"name = {json.dumps(t['name'])}",
            f"branch = {json.dumps(t['branch'])}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_hub_config(
    directory: Path, *, port: int, url: str = "", inventory: dict[str, Any] | None = None, extra: str = ""
) -> Path:
    """A hub.toml (and inventory.toml, master.key) in `directory` for a real `sentinel hub serve`."""
    directory.mkdir(parents=True, exist_ok=True)
    inv = write_inventory(directory / "inventory.toml", inventory or SAMPLE_INVENTORY)
    key = directory / "master.key"
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, base64.b64encode(MASTER_KEY) + b"\n")
        os.close(fd)
    text = (
        f'[hub]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{directory / "state"}"\n'
        f'inventory = "{inv}"\nmaster_key_file = "{key}"\nlog_format = "json"\n'
    )
    if url:
        text += f'\n[database]\nurl = "{url}"\n'
    path = directory / "hub.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


class HubProcess:
    """A real `python -m sentinel.hub serve` process on 127.0.0.1:port."""

    def __init__(self, config: Path, port: int, *, log_name: str = "hub.log") -> None:
        import sys

        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = config.parent / log_name
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "sentinel.hub", "--config", str(config), "serve"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=config.parent,
        )

    def wait_ready(self, timeout: float = 60.0) -> HubProcess:
        """Block until /readyz answers 200 (or fail with the log)."""
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub exited {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"hub not ready:\n{self.log()[-3000:]}")

    def log(self) -> str:
        """Everything the process wrote."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait; SIGKILL if it does not stop."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def fleet_inventory(terminals: int, *, branches: int = 100, primaries: int = 10) -> dict[str, Any]:
    """A generated organisation: `terminals` terminals over branches and primary branches."""
    return {
        "head_office": {"id": "HO", "name": "Head office"},
        "primary_branches": [{"id": f"p{p:02d}", "name": f"Primary {p:02d}"} for p in range(primaries)],
        "branches": [{"id": f"b{b:03d}", "primary": f"p{b % primaries:02d}"} for b in range(branches)],
        "terminals": [{"name": f"t{i:05d}", "branch": f"b{i % branches:03d}"} for i in range(terminals)],
    }


class RoundRobinProxy:
    """A tiny TCP load balancer on 127.0.0.1 (the bank's, in tests): each connection goes to the next
    upstream that accepts it, so a killed hub replica is skipped until it is back."""

    def __init__(self, upstreams: Sequence[int], port: int | None = None) -> None:
        import threading

        self.upstreams = list(upstreams)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections: dict[int, int] = dict.fromkeys(self.upstreams, 0)
        self._next = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-proxy", daemon=True)
        self._loop: Any = None
        self._stop: Any = None

    def start(self) -> RoundRobinProxy:
        """Listen; return self."""
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def _run(self) -> None:
        import asyncio

        async def pipe(reader: Any, writer: Any) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader: Any, writer: Any) -> None:
            for _ in range(len(self.upstreams)):
                port = self.upstreams[self._next % len(self.upstreams)]
                self._next += 1
                try:
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                self.connections[port] += 1
                await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
                return
            writer.close()

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            server = await asyncio.start_server(handle, "127.0.0.1", self.port)
            self._ready.set()
            async with server:
                await self._stop.wait()

        asyncio.run(main())

    def stop(self) -> None:
        """Stop listening and join the thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
