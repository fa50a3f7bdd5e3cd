"""The CLI run by real, different OS logins (created for the test, in a private /etc): four-eyes
and roles compare the people the kernel names, never the names they type."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.agent.wiring import open_store
from sentinel.config.loader import load
from sentinel.core.model import Category, Severity
from sentinel.hazards import export
from sentinel.testing import FakeClock
from tests.hazards.conftest import finding
from tests.support.agent import write_config
from tests.support.logins import run_as_logins

ROLES = """
[[hazards.roles]]
name = "security-closers"
actions = ["close", "cancel"]
categories = ["data_security"]
allow = ["group:security-officers"]
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other logins can reach (pytest's own tmp is closed to them)."""
    base = Path(tempfile.mkdtemp(prefix="sentinel-people-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _config(base: Path, extra: str = "") -> tuple[Path, Any]:
    path = write_config(base, extra=extra, health=False)
    cfg = load(path)
    store = open_store(cfg, clock=FakeClock())
    try:
        store.apply(finding(FakeClock(), subject="/var", rectification=()))
        store.apply(
            finding(FakeClock(), rule="usb_storage", subject="0781:5567", category=Category.DATA_SECURITY,
                    severity=Severity.CRITICAL, auto_resolve=False, rectification=())
        )  # fmt: skip
    finally:
        store.close()
    return path, cfg


def _steps(config: Path, *steps: tuple[str, str, list[str]]) -> list[dict[str, Any]]:
    return [
        {"login": login, "via": via, "argv": ["hazards", *argv, "--config", str(config)]}
        for login, via, argv in steps
    ]


def _session(config: Path, cfg: Any, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return run_as_logins(
        {
            "logins": ["alice", "bob"],
            "groups": {"sentinel-ops": ["alice", "bob"], "security-officers": ["bob"]},
            "share_group": "sentinel-ops",
            "share": [str(cfg.agent.state_dir)],
            "steps": steps,
        }
    )


def test_one_person_under_two_names_cannot_resolve_and_close_two_people_can(shared: Path) -> None:
    """alice resolves; alice as "alice2", and alice through su to root, are refused (four-eyes,
    naming os:alice); bob — even typing "alice2" — closes, and the ledger names him."""
    config, cfg = _config(shared)
    results = _session(
        config,
        cfg,
        _steps(
            config,
            ("alice", "setpriv", ["whoami", "--json"]),
            ("alice", "setpriv", ["resolve", "1", "--by", "alice"]),
            ("alice", "setpriv", ["close", "1", "--by", "alice2"]),
            ("alice", "su", ["close", "1", "--by", "root"]),
            ("bob", "setpriv", ["close", "1", "--by", "alice2", "--note", "verified on site"]),
        ),
    )
    whoami, resolved, renamed, via_su, closed = results
    assert json.loads(whoami["stdout"])["id"] == "os:alice", whoami
    assert resolved["returncode"] == 0, resolved
    assert renamed["returncode"] == 1 and "four-eyes" in renamed["stderr"], renamed
    assert "os:alice resolved it" in renamed["stderr"] and "you are os:alice" in renamed["stderr"]
    if "skipped" not in via_su:  # root now, but the login uid still says alice
        assert via_su["returncode"] == 1 and "you are os:alice" in via_su["stderr"], via_su
    assert closed["returncode"] == 0, closed
    store = open_store(cfg)
    try:
        record = store.get(1)
        assert record is not None
        assert (record.resolved_by_id, record.closed_by, record.closed_by_id) == (
            "os:alice",
            "alice2",
            "os:bob",
        )
        trail = [(h.action, h.actor, h.identity.id if h.identity else None) for h in record.history]
        assert trail == [
            ("raise", "sentinel", "agent"),
            ("resolve", "alice", "os:alice"),
            ("close", "alice2", "os:bob"),
        ]
        ledger = export.to_markdown([record], terminal="t", branch="b", generated="now")
        assert "Verified and closed by alice2 (os:bob)" in ledger
    finally:
        store.close()


def test_roles_compare_unix_groups_of_the_login(shared: Path) -> None:
    """Only security-officers (bob) may close a data_security hazard: alice is refused with the
    role named, bob closes it; the other hazard is governed by no role."""
    config, cfg = _config(shared, ROLES)
    results = _session(
        config,
        cfg,
        _steps(
            config,
            ("alice", "setpriv", ["resolve", "2"]),
            ("bob", "setpriv", ["resolve", "1"]),
            ("alice", "setpriv", ["close", "1"]),
            ("alice", "setpriv", ["cancel", "2", "--note", "a teller's phone charging"]),
            ("bob", "setpriv", ["close", "2", "--by", "Bob Li"]),
        ),
    )
    resolved2, resolved1, closed1, refused, closed2 = results
    assert [r["returncode"] for r in (resolved2, resolved1, closed1, closed2)] == [0, 0, 0, 0], results
    assert refused["returncode"] == 1, refused
    assert 'cancel refused by role "security-closers"' in refused["stderr"]
    assert "os:alice is not one of group:security-officers" in refused["stderr"]
    assert "done by Bob Li (os:bob)" in closed2["stdout"]
