"""Sinks: signatures, HTTP outcome rules, the file sink, Alertmanager alerts, sink config."""

from __future__ import annotations

import base64
import json
import socket
import threading
from email.message import Message
from pathlib import Path

import pytest

from sentinel.config.loader import ConfigError, load
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow
from sentinel.tickets.sinks.alertmanager import alert
from sentinel.tickets.sinks.base import classify
from sentinel.tickets.sinks.file import FileSink
from sentinel.tickets.sinks.webhook import WebhookSink, read_secret, read_secrets, sign
from tests.support.agent import write_config
from tests.support.net import WebhookReceiver


def test_signature_matches_the_standard_webhooks_reference_vector(tmp: Path) -> None:
    """The example from the Standard Webhooks specification verifies."""
    secret_file = tmp / "secret"
    secret_file.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")
    secret = read_secret(secret_file)
    assert secret == base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (400, "dead"),
        (401, "dead"),
        (404, "dead"),
        (410, "dead"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_status_rules(status: int, kind: str) -> None:
    """2xx delivered; 408/429/5xx retried; other 4xx (410 included) dead-lettered."""
    assert classify(status).kind == kind


def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After: 30 asks for 30 s."""
    headers = Message()
    headers["Retry-After"] = "30"
    assert classify(429, headers).retry_after == 30.0


def row(payload: str = '{"x": 1}', key: str = "k1", hazard_id: int = 1) -> OutboxRow:
    return OutboxRow(
        id=1,
        hazard_id=hazard_id,
        sink="s",
        transition="raised",
        payload=payload,
        key=key,
        created_at=0.0,
        attempts=0,
    )


def test_a_receiver_that_never_answers_times_out_and_is_retried() -> None:
    """Accepts the connection, never replies: the attempt ends at the timeout as a retry."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    try:
        sink = WebhookSink(SinkConfig(name="s", type="webhook", url=f"http://127.0.0.1:{port}/", timeout=0.5))  # type: ignore[arg-type]
        outcome = sink.send(row())
        assert outcome.kind == "retry" and "timed out" in outcome.error
    finally:
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


def whsec(secret: bytes) -> str:
    return "whsec_" + base64.b64encode(secret).decode()


def test_secret_rotation_without_a_restart(tmp: Path) -> None:
    """Old secret, then old + new (two signatures, each receiver accepts), then new only; a file
    emptied by mistake keeps the last good secrets signing."""
    old, new = b"old-secret-0123456789", b"new-secret-9876543210"
    secret_file = tmp / "hook.secret"
    secret_file.write_text(whsec(old) + "\n")
    old_side, new_side = WebhookReceiver(old).start(), WebhookReceiver(new).start()
    try:
        sinks = {
            side: WebhookSink(SinkConfig(name="s", type="webhook", url=side.url, secret_file=secret_file))  # type: ignore[arg-type]
            for side in (old_side, new_side)
        }

        def outcomes() -> list[str]:
            return [sinks[side].send(row(key=f"k{len(side.received)}")).kind for side in (old_side, new_side)]

        assert outcomes() == ["delivered", "dead"]  # 401 from the receiver that has the new secret
        secret_file.write_text(f"{whsec(new)}\n{whsec(old)}\n")
        assert outcomes() == ["delivered", "delivered"]
        secret_file.write_text(whsec(new) + "\n")
        assert outcomes() == ["dead", "delivered"]
        secret_file.write_text("")
        assert outcomes() == ["dead", "delivered"]
        assert old_side.bad_signatures == 2 and new_side.bad_signatures == 1
    finally:
        old_side.stop()
        new_side.stop()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the secret file is empty"),
        ("whsec_AAAA\nnot-a-secret\n", "line 2: expected whsec_"),
        ("raw-old-key\nwhsec_AAAA\n", "line 1: expected whsec_"),  # a raw key cannot rotate in place
    ],
)
def test_a_bad_secret_file_is_named(tmp: Path, text: str, problem: str) -> None:
    """An empty file or a stray line is one clear error naming the file (and the line)."""
    secret_file = tmp / "hook.secret"
    secret_file.write_text(text)
    with pytest.raises(ValueError, match=problem) as info:
        read_secrets(secret_file)
    assert str(secret_file) in str(info.value)


def test_file_sink_appends_lines_with_private_mode(tmp: Path) -> None:
    """One JSON line per ticket, file mode 0600."""
    path = tmp / "out" / "tickets.jsonl"
    sink = FileSink(SinkConfig(name="f", type="file", path=path))
    assert [o.kind for o in sink.send_batch([row('{"a": 1}'), row('{"a": 2}', key="k2")])] == [
        "delivered"
    ] * 2
    assert [json.loads(line)["a"] for line in path.read_text().splitlines()] == [1, 2]
    assert path.stat().st_mode & 0o777 == 0o600


def test_file_sink_failure_is_a_retry(tmp: Path) -> None:
    """An unwritable path retries instead of losing the ticket."""
    blocker = tmp / "file"
    blocker.write_text("")
    sink = FileSink(SinkConfig(name="f", type="file", path=blocker / "sub" / "t.jsonl"))
    assert sink.send(row()).kind == "retry"


def ticket(state: str, transition: str) -> dict[str, object]:
    hazard = {
        "id": 7,
        "rule": "disk",
        "severity": "major",
        "category": "terminal_equipment",
        "state": state,
        "title": "Disk / 95% full",
        "subject": "/",
        "occurrences": 2,
        "owner": "it",
        "deadline": None,
        "first_seen": "2026-11-28T10:00:00Z",
        "rectification": [{"item": 1, "text": "clean", "done": False}],
    }
    return {"hazard": hazard, "terminal": "t1", "branch": "0101", "drill": False, "transition": transition}


def test_alert_labels_and_endsat() -> None:
    """Firing alerts have no endsAt; resolved ones end now."""
    firing = alert(ticket("open", "raised"), now=1_800_000_000)
    assert firing["labels"] == {
        "alertname": "disk",
        "severity": "major",
        "category": "terminal_equipment",
        "terminal": "t1",
        "branch": "0101",
        "hazard_id": "7",
        "drill": "false",
    }
    assert "endsAt" not in firing and firing["startsAt"] == "2026-11-28T10:00:00Z"
    assert "1. [ ] clean" in firing["annotations"]["rectification"]
    ended = alert(ticket("resolved", "resolved"), now=1_800_000_000)
    assert ended["endsAt"] == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sinks]]\nname = "a"\ntype = "webhook"\n', "sinks[0].url: a webhook sink needs a url"),
        (
            '[[sinks]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n',
            "sinks[0].secret_file: a webhook sink needs",
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\nunsigned = true\nsecret_file = "s"\n',
            "sinks[0].unsigned: unsigned = true and a secret_file contradict each other",
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "file"\npath = "t"\nunsigned = true\n',
            "sinks[0].unsigned: applies to webhook",
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "webhook"\nurl = "ftp://x"\n',
            "sinks[0].url: expected an http(s) URL",
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "file"\npath = "t"\n'
            '[[sinks]]\nname = "a"\ntype = "file"\npath = "u"\n',
            'sinks[1].name: another entry is already named "a"',
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\ntransitions = ["exploded"]\n',
            "sinks[0].transitions: unknown transition 'exploded'",
        ),
        (
            '[[sinks]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\nheaders = { webhook-id = "x" }\n',
            "sinks[0].headers.webhook-id: this header is set by Sentinel",
        ),
    ],
)
def test_sink_config_errors(tmp: Path, text: str, message: str) -> None:
    """Each mistake is one line naming the sink's key."""
    path = write_config(tmp, extra="\n" + text)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert any(message in e for e in info.value.errors), info.value.errors
