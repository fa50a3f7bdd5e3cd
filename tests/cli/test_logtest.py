"""`sentinel logtest`: per line the parsed event or why not, and the shipped rules it counts toward."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from sentinel.cli.main import main

SHIPPED = str(Path(__file__).parents[2] / "config" / "sentinel.toml")
TOP_KEYS = {"line", "input", "format", "record", "events", "note", "error"}
EVENT_KEYS = {"detector", "kind", "subject", "time", "fields", "rules", "repeat"}
RECORD_KEYS = {"time", "host", "program", "pid", "message", "stamped_at_read"}


def logtest(tmp: Path, lines: list[str | bytes], *args: str) -> tuple[int, str]:
    """Run logtest on a file holding `lines`; the exit code and stdout."""
    path = tmp / "lines.log"
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        code = main(["logtest", "--config", SHIPPED, *args, str(path)])
    finally:
        sys.stdout = stdout
    return code, out.getvalue()


def as_json(tmp: Path, lines: list[str | bytes]) -> list[dict[str, Any]]:
    code, text = logtest(tmp, lines, "--json")
    assert code == 0
    return [json.loads(x) for x in text.splitlines()]


def journal(message: str, **fields: str) -> str:
    entry = {"__CURSOR": "c1", "MESSAGE": message, "SYSLOG_IDENTIFIER": "sshd", "_COMM": "sshd", "_UID": "0"}
    entry.update(fields)
    return json.dumps(entry)


def test_text_shows_the_event_its_rules_and_why_other_lines_are_not_events(tmp: Path) -> None:
    """An invalid user counts toward login_invalid_users; a connection close says why it is nothing."""
    code, text = logtest(
        tmp,
        [
            "Mar 12 09:14:01 teller07 sshd-session[4821]: Invalid user teller from 203.0.113.41 port 50514",
            "Mar 12 09:14:02 teller07 sshd[7]: Connection closed by 203.0.113.41 port 50514 [preauth]",
            "no header at all",
        ],
    )
    assert code == 0
    assert "auth.invalid_user subject=203.0.113.41" in text
    assert "counts toward: login_invalid_users (5 within 5m, by source)" in text
    assert "line 2: syslog" in text and "not an event: sshd:" in text
    assert "line 3: not read: no syslog header" in text


def test_json_keys_are_stable(tmp: Path) -> None:
    """Every object has exactly the documented keys, record and events too."""
    results = as_json(
        tmp,
        [
            "Mar 12 09:14:03 teller07 sshd[4823]: Failed password for root from 203.0.113.41 port 1 ssh2",
            journal("Accepted password for alice from 192.0.2.10 port 2 ssh2"),
            "garbage",
        ],
    )
    assert [r["format"] for r in results] == ["syslog", "journal", None]
    for result in results:
        assert set(result) == TOP_KEYS
        if result["record"] is not None:
            assert set(result["record"]) >= RECORD_KEYS
        for event in result["events"]:
            assert set(event) == EVENT_KEYS
    assert results[1]["record"]["origin"]["comm"] == "sshd"
    assert results[2]["error"] == "no syslog header"


@pytest.mark.parametrize(
    ("line", "kind", "rule"),
    [
        (
            "Mar 12 09:14:09 t sshd-session[1]: error: maximum authentication attempts exceeded for root from"
            " 203.0.113.41 port 50522 ssh2 [preauth]",
            "max_auth_attempts",
            "login_max_attempts",
        ),
        (
            "Mar 12 09:17:01 t sshd[2]: User root from 203.0.113.43 not allowed because not listed in"
            " AllowUsers",
            "denied_user",
            "login_denied_users",
        ),
        (
            "Mar 12 10:06:03 t sshd[3]: pam_faillock(sshd:auth): Consecutive login failures for user root"
            " account temporarily locked",
            "account_locked",
            "account_locked",
        ),
        (
            journal("Accepted password for root from 198.51.100.7 port 1 ssh2", _COMM="logger", _UID="1000"),
            "log_forgery",
            "log_forgery",
        ),
        (
            "Mar 12 10:01:08 t sudo:  mallory : TTY=pts/3 ; PWD=/home/m ; USER=root ;"
            " COMMAND=/bin/echo x ; USER=nobody",
            "sudo_root_unlisted",
            "root_by_unlisted_user",
        ),
    ],
)
def test_new_kinds_count_toward_shipped_rules(tmp: Path, line: str, kind: str, rule: str) -> None:
    """The kinds issue 17 added are wired into config/rules.d/events.toml."""
    (result,) = as_json(tmp, [line])
    rules = {e["kind"]: e["rules"] for e in result["events"]}
    assert rule in rules[kind]


def test_pam_failures_count_once_per_attempt(tmp: Path) -> None:
    """A PAM failure counts toward pam_login_failures only for a service that logs no failure of
    its own (vsftpd, cockpit): sshd's and su's attempts are counted from their own lines."""
    pam = "pam_unix({service}:auth): authentication failure; logname= uid=0 tty= rhost={host} user=b"
    lines = [
        f"Mar 12 10:00:0{i} t {program}[{i}]: " + pam.format(service=service, host=f"203.0.113.{i}")
        for i, (program, service) in enumerate(
            [("vsftpd", "vsftpd"), ("cockpit-session", "cockpit"), ("sshd", "sshd"), ("su", "su-l")]
        )
    ]
    counted = [[r for e in x["events"] for r in e["rules"]] for x in as_json(tmp, lines)]
    assert counted == [["pam_login_failures"], ["pam_login_failures"], [], []]


def test_a_connections_repeats_are_shown_but_not_counted(tmp: Path) -> None:
    """The second line of one invalid-user connection is recognised, marked a repeat, counts nowhere."""
    first, second = as_json(
        tmp,
        [
            "Mar 12 09:14:01 t sshd[4821]: Invalid user teller from 203.0.113.41 port 50514",
            "Mar 12 09:14:02 t sshd[4821]: Connection closed by invalid user teller 203.0.113.41 port 50514"
            " [preauth]",
        ],
    )
    assert [(e["kind"], e["repeat"]) for e in first["events"]] == [("invalid_user", False)]
    assert [(e["kind"], e["repeat"], e["rules"]) for e in second["events"]] == [("invalid_user", True, [])]


def test_invalid_utf8_and_control_characters_are_shown_escaped(tmp: Path) -> None:
    """A stray byte is kept (as \\xff); a NUL or escape sequence cannot reach the terminal."""
    (result,) = as_json(
        tmp, [b"Mar 12 09:14:01 t sshd[1]: Invalid user ad\xffm\x1b[31m from 203.0.113.9 port 1"]
    )
    (event,) = result["events"]
    assert event["fields"]["user"] == "ad\\xffm\\x1b[31m"
    assert "\x1b" not in json.dumps(result, ensure_ascii=False)


def test_reads_standard_input(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No FILE: the lines come from stdin."""
    line = b"Mar 12 09:14:03 t sshd[1]: Failed password for root from 203.0.113.41 port 1 ssh2\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(line)))
    assert main(["logtest", "--config", SHIPPED, "--json"]) == 0
    (result,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [e["kind"] for e in result["events"]] == ["login_failed"]
    assert "login_bruteforce" in result["events"][0]["rules"]


def test_a_file_that_cannot_be_read_is_a_usage_error(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One line on stderr, exit 2."""
    assert main(["logtest", "--config", SHIPPED, str(tmp / "missing.log")]) == 2
    assert "cannot read" in capsys.readouterr().err
