"""`sentinel hazards verify` and `trail`, and the auditor's script that needs no Sentinel."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sentinel.agent.wiring import open_store
from sentinel.cli.main import main
from sentinel.config.loader import load
from sentinel.hazards.lifecycle import Action
from sentinel.testing import FakeClock
from tests.conftest import require_tool
from tests.hazards.conftest import finding
from tests.support.agent import write_config
from tests.support.people import who

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify-trail.sh"


@pytest.fixture
def config(tmp: Path) -> Path:
    """A store with a little life in it."""
    path = write_config(tmp, health=False)
    clock = FakeClock()
    store = open_store(load(path), clock=clock)
    try:
        store.apply(finding(clock, rectification=()))
        store.act(1, Action.RESOLVE, actor=who("alice", "王丽"), note="磁盘已清理 — cleaned")
        store.act(1, Action.CLOSE, actor=who("bob"))
    finally:
        store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_and_trail_on_an_intact_store(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify says intact (exit 0) with the head; trail prints one link per line, the head last."""
    code, out, _ = run(capsys, "hazards", "verify", "--config", str(config))
    assert code == 0 and "intact" in out and "4 rows" in out
    code, out, _ = run(capsys, "hazards", "trail", "--config", str(config))
    links = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [link["seq"] for link in links] == [1, 2, 3, 4]
    assert links[0]["kind"] == "genesis" and links[2]["row"]["actor"]["display"] == "王丽"
    code, out, _ = run(capsys, "hazards", "trail", "--from", "3", "--config", str(config))
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [3, 4]
    head = links[-1]
    code, out, _ = run(
        capsys, "hazards", "verify", "--json", "--expect", f"4:{head['hash']}", "--config", str(config)
    )
    assert code == 0 and json.loads(out)["head"] == {"seq": 4, "hash": head["hash"]}


def test_status_shows_the_trail_head_even_without_an_agent(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sentinel status` names the store and its newest link (what Prometheus scrapes as the head),
    and says no agent has verified it; --json has the same head `verify` reaches."""
    code, out, _ = run(capsys, "hazards", "verify", "--json", "--config", str(config))
    verified = json.loads(out)
    code, out, _ = run(capsys, "status", "--config", str(config))
    assert code == 1 and "not running" in out
    head = verified["head"]
    assert f"trail: store {verified['store_id']}, head row 4 {head['hash']}" in out
    assert "not verified by a running agent yet" in out
    code, out, _ = run(capsys, "status", "--json", "--config", str(config))
    trail = json.loads(out)["trail"]
    assert trail == {"store_id": verified["store_id"], "head": head, "verification": None}


def test_central_links_from_a_file_of_tickets_or_pairs(
    config: Path, capsys: pytest.CaptureFixture[str], tmp: Path
) -> None:
    """--expect-file takes "SEQ HASH" lines and JSON tickets; a link not held is named; junk is exit 2."""
    _, out, _ = run(capsys, "hazards", "trail", "--config", str(config))
    links = [json.loads(line) for line in out.splitlines()]
    held = tmp / "held"
    held.write_text(
        f"2 {links[1]['hash']}\n"
        + json.dumps({"chain": {"seq": 3, "hash": links[2]["hash"]}, "schema": "sentinel.ticket/1"})
        + "\n"
    )
    assert run(capsys, "hazards", "verify", "--expect-file", str(held), "--config", str(config))[0] == 0
    held.write_text(f"3 {'0' * 64}\n9 {'1' * 64}\n")
    code, out, _ = run(capsys, "hazards", "verify", "--expect-file", str(held), "--config", str(config))
    assert code == 1 and "BROKEN: row 3: the central copy holds 0000000000000000" in out
    assert "row 9 is in the central copy but not here: the trail was cut" in out
    held.write_text("not a link\n")
    code, _, err = run(capsys, "hazards", "verify", "--expect-file", str(held), "--config", str(config))
    assert code == 2 and "expected" in err


def test_the_auditors_script_recomputes_the_trail_without_sentinel(
    config: Path, capsys: pytest.CaptureFixture[str], tmp: Path
) -> None:
    """scripts/verify-trail.sh (jq + sha256sum) agrees with `verify`: intact, then the edited row."""
    require_tool("jq", "jq")
    _, out, _ = run(capsys, "hazards", "trail", "--config", str(config))
    trail = tmp / "trail.jsonl"
    trail.write_text(out)
    checked = _script(trail)
    assert checked.returncode == 0 and "trail intact: 4 rows" in checked.stdout, (
        checked.stdout + checked.stderr
    )
    db = load(config).agent.state_dir / "hazards.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE history SET note = 'nothing' WHERE action = 'resolve'")
    conn.commit()
    conn.close()
    _, out, _ = run(capsys, "hazards", "trail", "--config", str(config))
    trail.write_text(out)
    broken = _script(trail)
    assert broken.returncode == 1 and broken.stdout.startswith("row 3: its row does not hash"), broken.stdout
    assert run(capsys, "hazards", "verify", "--config", str(config))[0] == 1


def _script(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)
