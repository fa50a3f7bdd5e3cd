"""Issue 18's proof: real packages, built and installed by the real dpkg into a test root while a
real `sentinel run` watches it, as installed (the account, groups, capabilities and mounts of
deploy/systemd/sentinel.service, rebuilt by tests/support/unit.py) — patch day is one record per
operation, not one per file; a file changed by hand afterwards is the critical hazard; inside a
change window info, outside major; a daemon root left on an upgraded binary is a restart item of
the upgrade's record."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.conftest import IN_CI, require_tool
from tests.sources.integrity.rules_helper import ROOT
from tests.support.agent import wait_for_log
from tests.support.dpkg import DpkgRoot, dpkg_available
from tests.support.unit import Sandbox, Unit

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not dpkg_available(), reason="needs dpkg and dpkg-deb (Debian)"),
]

PACKAGE_RULES = ("package_change", "package_change_outside_window")
FOLDED_RULE = """
[[rules]]
name = "test_folded_deleted_exe"
category = "it_change"
event = "processes.deleted_exe"
where = { operation = "~.+" }
severity = "info"
title = "folded: {exe} into {operation}"
"""


def cli(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The sentinel CLI on the test agent's config."""
    command = [sys.executable, "-m", "sentinel", *args, "--config", str(tmp / "sentinel.toml")]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def hazards(tmp: Path) -> list[dict[str, Any]]:
    """Every hazard in the agent's store, with its trail (the CLI, as an operator reads them)."""
    result = cli(tmp, "hazards", "list", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def records(tmp: Path) -> list[dict[str, Any]]:
    """The it_change records of package operations."""
    return [h for h in hazards(tmp) if h["rule"] in PACKAGE_RULES]


@pytest.fixture
def installed() -> Sandbox:
    """The shipped unit's credentials and mounts around the agent (parsed from the unit file)."""
    if os.geteuid() != 0:
        message = "dpkg and the unit's credentials (setpriv, unshare -m) need root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    require_tool("setpriv", "util-linux")
    require_tool("unshare", "util-linux")
    return Sandbox(Unit.parse(ROOT / "deploy" / "systemd" / "sentinel.service"))


@pytest.fixture
def dpkg_root(tmp: Path) -> DpkgRoot:
    root = DpkgRoot(tmp / "root", tmp / "debs")
    (root.root / "usr" / "bin").mkdir(parents=True)
    return root


@pytest.fixture
def agent_config(tmp: Path, dpkg_root: DpkgRoot) -> str:
    (tmp / "rules.d").mkdir()
    for name in ("integrity.toml", "change.toml", "events.toml"):
        shutil.copy(ROOT / "config" / "rules.d" / name, tmp / "rules.d")
    # for the test only: make a folded deleted-exe visible (the shipped rules raise nothing for it)
    (tmp / "rules.d" / "zz-test.toml").write_text(FOLDED_RULE, encoding="utf-8")
    return f"""
[collectors.packages]
root = "{dpkg_root.root}"
dpkg_log = "{dpkg_root.log}"
poll = "200ms"
settle = "1s"

[collectors.processes]
interval = "1s"
temp_dirs = ["/dev/shm"]  # the test root lives under /tmp: its daemon is not "run from temp"

[[integrity.watch]]
path = "{dpkg_root.root / "usr"}"
policy = "readonly"
"""


@pytest.fixture
def daemon(dpkg_root: DpkgRoot) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start the package's own binary as a long-running process (stopped at the end)."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([str(dpkg_root.root / "usr/bin/sntest-daemon"), "600"])
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(5)


def agent_uid(pid: int) -> int:
    """The real uid of the agent the sandbox started (setpriv execs it in the same process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def sleep_binary(marker: bytes) -> bytes:
    """A real executable (coreutils' sleep) with a marker appended: each version differs."""
    return Path(shutil.which("sleep") or "/bin/sleep").read_bytes() + marker


def test_patch_day_is_one_record_per_operation_and_a_hand_edit_is_critical(
    tmp: Path,
    dpkg_root: DpkgRoot,
    agent_config: str,
    start_agent: Callable[..., Any],
    daemon: Callable[[], subprocess.Popen[bytes]],
    installed: Sandbox,
) -> None:
    """install (2 packages), upgrade, remove: one it_change record each listing the files, no
    readonly-FIM hazard for them, the daemon on the replaced binary a restart item, not a
    critical hazard; then a file changed by hand is critical: "content differs from package"."""
    usr = dpkg_root.root / "usr"
    a1 = dpkg_root.build(
        "sntest-a", "1.0", {"/usr/bin/sntest-a": "#!/bin/sh\necho a1\n", "/usr/share/sntest-a/data": "one\n"}
    )
    b1 = dpkg_root.build("sntest-daemon", "1.0", {"/usr/bin/sntest-daemon": sleep_binary(b"\0v1")})
    agent = start_agent(agent_config, health=False, sandbox=installed)
    wait_for_log(agent, "fim_baseline_created")
    assert agent_uid(agent.proc.pid) != 0  # the unit's account, not root

    dpkg_root.install(a1, b1)  # one dpkg run, two packages: one operation
    wait_until(lambda: len(records(tmp)) == 1, timeout=30)
    [install] = records(tmp)
    assert install["rule"] == "package_change_outside_window" and install["severity"] == "major"
    assert install["category"] == "it_change"
    change = install["change"]
    assert {(p["name"], p["action"], p["new"]) for p in change["packages"]} == {
        ("sntest-a", "install", "1.0"),
        ("sntest-daemon", "install", "1.0"),
    }
    assert str(usr / "bin/sntest-a") in change["files"]
    assert str(usr / "bin/sntest-daemon") in change["files"]
    assert str(usr / "share/sntest-a/data") in change["files"]
    assert change["tool"] == "dpkg" and "-i" in change["command"] and change["user"]

    proc = daemon()
    a2 = dpkg_root.build("sntest-a", "1.1", {"/usr/bin/sntest-a": "#!/bin/sh\necho a2\n"})
    b2 = dpkg_root.build("sntest-daemon", "1.1", {"/usr/bin/sntest-daemon": sleep_binary(b"\0v2")})
    dpkg_root.install(a2, b2)
    wait_until(lambda: len(records(tmp)) == 2, timeout=30)
    upgrade = next(r for r in records(tmp) if any(p["action"] == "upgrade" for p in r["change"]["packages"]))
    assert {(p["name"], p["old"], p["new"]) for p in upgrade["change"]["packages"]} == {
        ("sntest-a", "1.0", "1.1"),
        ("sntest-daemon", "1.0", "1.1"),
    }
    assert str(usr / "share/sntest-a/data") in upgrade["change"]["removed_files"]  # dropped by 1.1
    items = [i["text"] for i in upgrade["rectification"]]
    assert any(f"pid {proc.pid}" in t and "sntest-daemon" in t for t in items), items

    dpkg_root.remove("sntest-a")
    wait_until(lambda: len(records(tmp)) == 3, timeout=30)
    removal = next(r for r in records(tmp) if r["change"]["packages"][0]["action"] == "remove")
    assert str(usr / "bin/sntest-a") in removal["change"]["files"] + removal["change"]["removed_files"]

    # the monitor saw every one of those files change, and folded them all
    scrape = agent.scrape()
    assert "sentinel_fim_attributed_total" in scrape
    attributed = next(
        float(line.split()[-1])
        for line in scrape.splitlines()
        if line.startswith("sentinel_fim_attributed_total")
    )
    assert attributed >= 5
    # ... and the daemon was seen on its deleted binary, as part of the upgrade
    daemon_exe = str(usr / "bin/sntest-daemon")

    def folded() -> list[dict[str, Any]]:
        return [
            h for h in hazards(tmp) if h["rule"] == "test_folded_deleted_exe" and h["subject"] == daemon_exe
        ]

    [seen] = wait_until(folded, timeout=20)
    assert seen["evidence"][-1]["operation"] == upgrade["subject"]
    assert seen["evidence"][-1]["pid"] == proc.pid
    everything = hazards(tmp)
    assert not [h for h in everything if h["rule"].startswith("fim_")], [h["title"] for h in everything]
    assert not [h for h in everything if h["rule"] == "process_deleted_exe" and h["subject"] == daemon_exe]
    assert len(records(tmp)) == 3

    # the same package's file changed by hand, long after any operation: critical, and it says why
    target = usr / "bin/sntest-daemon"
    target.write_bytes(target.read_bytes() + b"evil")
    wait_until(lambda: any(h["rule"] == "fim_package_mismatch" for h in hazards(tmp)), timeout=30)
    [mismatch] = [h for h in hazards(tmp) if h["rule"] == "fim_package_mismatch"]
    assert mismatch["severity"] == "critical" and mismatch["subject"] == str(target)
    evidence = mismatch["evidence"][-1]
    assert evidence["package"] == "sntest-daemon:all"
    assert "content differs from package" in evidence["package_check"]
    assert "no package operation" in evidence["package_check"]
    assert not [h for h in hazards(tmp) if h["rule"] == "fim_readonly_change"]
    assert agent.stop() == 0


def test_an_operation_inside_an_open_window_is_info_and_outside_major(
    tmp: Path,
    dpkg_root: DpkgRoot,
    agent_config: str,
    start_agent: Callable[..., Any],
    installed: Sandbox,
) -> None:
    """`sentinel change open --ticket CHG-123 --for 1h` makes the next operation an info record
    naming the ticket; after `change close` the next one is "change outside an approved window"."""
    start_agent(agent_config, health=False, sandbox=installed)
    opened = cli(tmp, "change", "open", "--ticket", "CHG-123", "--for", "1h", "--by", "alice", "--json")
    assert opened.returncode == 0, opened.stderr
    window = json.loads(opened.stdout)
    dpkg_root.install(dpkg_root.build("sntest-w", "1.0", {"/usr/bin/sntest-w": "#!/bin/sh\n"}))
    wait_until(lambda: len(records(tmp)) == 1, timeout=30)
    [inside] = records(tmp)
    assert (inside["rule"], inside["severity"]) == ("package_change", "info")
    assert "CHG-123" in inside["title"]
    assert inside["evidence"][-1]["change_ticket"] == "CHG-123"

    closed = cli(tmp, "change", "close", str(window["id"]), "--by", "alice")
    assert closed.returncode == 0, closed.stderr
    listed = json.loads(cli(tmp, "change", "list", "--all", "--json").stdout)
    [row] = listed["adhoc"]
    assert row["opened_by"]["display"] == "alice" and row["closed_at"] and row["ticket"] == "CHG-123"

    wait_until(lambda: not json.loads(cli(tmp, "change", "list", "--json").stdout)["adhoc"], timeout=5)
    os.utime(dpkg_root.admin / "status")  # nothing changed; the next operation is a real one
    dpkg_root.install(dpkg_root.build("sntest-w", "1.1", {"/usr/bin/sntest-w": "#!/bin/sh\necho 2\n"}))
    wait_until(lambda: len(records(tmp)) == 2, timeout=30)
    outside = next(r for r in records(tmp) if r["rule"] == "package_change_outside_window")
    assert outside["severity"] == "major"
    assert outside["title"].startswith("Change outside an approved window: upgrade sntest-w 1.0 -> 1.1")
