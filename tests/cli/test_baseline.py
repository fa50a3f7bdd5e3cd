"""`sentinel baseline init|check|update|show` on a real tree, with the real hazard store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from sentinel.cli.main import main
from sentinel.sources.integrity.baseline import BaselineFiles
from tests.sources.integrity.rules_helper import ROOT
from tests.support.agent import write_config


@pytest.fixture
def setup(tmp: Path) -> Path:
    """A watched tree and a config whose rules.d holds the shipped integrity rules."""
    (tmp / "etc").mkdir()
    (tmp / "etc" / "passwd").write_text("root\n")
    (tmp / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (tmp / "rules.d").mkdir()
    shutil.copy(ROOT / "config" / "rules.d" / "integrity.toml", tmp / "rules.d")
    extra = f'\n[[integrity.watch]]\npath = "{tmp / "etc"}"\npolicy = "critical"\n'
    return write_config(tmp, extra=extra, health=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out = run(capsys, *args, "--json")
    return code, json.loads(out)


def test_init_then_check_is_clean(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh baseline checks clean (exit 0)."""
    code, info = run_json(capsys, "baseline", "init", "--config", str(setup), "--by", "alice")
    assert code == 0 and info["entries"] == 3
    code, out = run(capsys, "baseline", "check", "--config", str(setup))
    assert code == 0 and "no changes" in out


def test_init_refuses_to_replace(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second init without --force is a usage error."""
    run(capsys, "baseline", "init", "--config", str(setup))
    assert main(["baseline", "init", "--config", str(setup)]) == 2


def test_check_groups_changes_by_kind(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Changes are listed under their kind and check exits 1."""
    run(capsys, "baseline", "init", "--config", str(setup))
    etc = setup.parent / "etc"
    (etc / "passwd").write_text("root\nevil\n")
    (etc / "hosts").unlink()
    (etc / "shadow").write_text("x")
    code, out = run(capsys, "baseline", "check", "--config", str(setup))
    assert code == 1
    assert "created (1):" in out and "deleted (1):" in out and "modified (1):" in out
    code, data = run_json(capsys, "baseline", "check", "--config", str(setup))
    assert code == 1 and data["counts"] == {"created": 1, "deleted": 1, "modified": 1}
    assert data["changes"]["modified"][0]["path"] == str(etc / "passwd")


def test_check_detects_tampering_and_raises_a_hazard(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One changed byte: check exits 1, says why, and a critical hazard is in the store."""
    run(capsys, "baseline", "init", "--config", str(setup))
    files = BaselineFiles(setup.parent / "state")
    data = bytearray(files.baseline.read_bytes())
    data[len(data) // 2] ^= 0x01
    files.baseline.write_bytes(bytes(data))
    code, result = run_json(capsys, "baseline", "check", "--config", str(setup))
    assert code == 1 and result["valid"] is False and result["problem"] in ("signature", "malformed")
    assert result["hazards"]
    code, hazards = run_json(capsys, "hazards", "list", "--config", str(setup))
    assert [(h["rule"], h["severity"]) for h in hazards] == [("fim_baseline_tampered", "critical")]


def test_baseline_reads_only_agent_and_integrity(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistake in another section is not the baseline's to report: init and check work, in a
    process that never imports the collectors; the tamper hazard then says why it is missing."""
    with setup.open("a", encoding="utf-8") as fh:
        fh.write('\n[hub_of_the_future]\ncolour = "blue"\n')
    probe = (
        "import sys\nfrom sentinel.cli.main import main\n"
        f"code = main(['baseline', 'init', '--config', {str(setup)!r}])\n"
        "print(code, 'sentinel.sources.registry' in sys.modules, 'sentinel.config.schema' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["0", "False", "False"], out.stderr
    code, out_text = run(capsys, "baseline", "check", "--config", str(setup))
    assert code == 0 and "no changes" in out_text
    files = BaselineFiles(setup.parent / "state")
    files.key.unlink()
    assert main(["baseline", "check", "--config", str(setup)]) == 1
    err = capsys.readouterr().err
    assert "could not record the hazard" in err and "hub_of_the_future: unknown key" in err


def test_check_detects_missing_key(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without the key, check exits 1 and names the missing key."""
    run(capsys, "baseline", "init", "--config", str(setup))
    BaselineFiles(setup.parent / "state").key.unlink()
    code, result = run_json(capsys, "baseline", "check", "--config", str(setup))
    assert code == 1 and result["problem"] == "key_missing"


def test_update_accepts_and_is_audited(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """update makes check clean again and records who, why and what in the audit trail."""
    run(capsys, "baseline", "init", "--config", str(setup), "--by", "alice")
    (setup.parent / "etc" / "passwd").write_text("root\nbob\n")
    code, result = run_json(
        capsys, "baseline", "update", "--config", str(setup), "--by", "carol", "--reason", "CHG-42 add bob"
    )
    assert code == 0 and result["accepted"] == {"modified": 1}
    assert run(capsys, "baseline", "check", "--config", str(setup))[0] == 0
    code, info = run_json(capsys, "baseline", "show", "--config", str(setup))
    assert code == 0 and info["valid"] and info["digest"] == result["new_digest"]
    latest = info["history"][0]
    assert (latest["action"], latest["actor"], latest["reason"]) == ("update", "carol", "CHG-42 add bob")
    assert latest["summary"]["changes"] == {"modified": 1}
    assert info["history"][1]["action"] == "init"


def test_show_lists_entries(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """show --entries GLOB lists matching paths with their attributes."""
    run(capsys, "baseline", "init", "--config", str(setup))
    code, info = run_json(capsys, "baseline", "show", "--config", str(setup), "--entries", "*passwd")
    assert code == 0
    assert list(info["paths"]) == [str(setup.parent / "etc" / "passwd")]
    assert "sha256=" in info["paths"][str(setup.parent / "etc" / "passwd")]


def test_nothing_watched_is_a_usage_error(tmp: Path) -> None:
    """Without [[integrity.watch]] entries there is nothing to baseline (exit 2)."""
    config = write_config(tmp, health=False)
    assert main(["baseline", "init", "--config", str(config)]) == 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_without_the_rights_every_command_says_so_in_one_line() -> None:
    """Run as an unprivileged user against root's baseline: one line saying to use sudo, exit 1,
    no traceback, and `check` raises no tamper hazard (the baseline is fine, the caller is not)."""
    base = Path(tempfile.mkdtemp(prefix="sentinel-perm-"))  # /tmp: reachable by the other user
    try:
        (base / "etc").mkdir()
        (base / "etc" / "passwd").write_text("root\n")
        extra = f'\n[[integrity.watch]]\npath = "{base / "etc"}"\npolicy = "critical"\n'
        config = write_config(base, extra=extra, health=False)
        assert main(["baseline", "init", "--config", str(config)]) == 0
        for path in (base, *base.iterdir(), config, base / "state"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # the state's own files stay root's

        def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "sentinel", "baseline", *args, "--config", str(config)]
            drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            return subprocess.run([*drop, *command], capture_output=True, text=True, timeout=60, cwd=base)

        if as_nobody("--help").returncode != 0:
            pytest.skip("this interpreter cannot be run by an unprivileged user here")
        for args in (["check"], ["update", "--by", "x", "--reason", "y"], ["init", "--force"]):
            result = as_nobody(*args)
            assert result.returncode == 1, (args, result.stderr)
            assert result.stderr.count("\n") == 1 and "run as root (sudo)" in result.stderr, result.stderr
        assert "init --force" not in as_nobody("update", "--by", "x", "--reason", "y").stderr
        hazards = json.loads(
            subprocess.run(
                [sys.executable, "-m", "sentinel", "hazards", "list", "--json", "--config", str(config)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        )
        assert hazards == []
    finally:
        shutil.rmtree(base)
