"""Run without root, as an operator trying it from a checkout: the agent and `inspect` say once and
clearly that they see less, library warnings are log lines, and nothing prints a traceback."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel.core import logging as sentinel_logging
from sentinel.core.privileges import CAP_DAC_READ_SEARCH, reduced_coverage
from sentinel.testing import wait_until
from tests.cli.test_inspect import SHADOW_CHECK
from tests.support.agent import write_config
from tests.support.net import free_port
from tests.support.unprivileged import NOBODY, open_to_nobody, run_as_nobody, unprivileged_python


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A directory under /tmp that uid 65534 owns (pytest's own tmp is 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="sentinel-nobody-"))
    open_to_nobody(path)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _status(tmp: Path, cap_eff: int) -> Path:
    path = tmp / "status"
    path.write_text(f"Name:\tsentinel\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff:016x}\n")
    return path


def test_reduced_coverage_is_said_only_without_root_or_the_units_capability(tmp: Path) -> None:
    """uid 0, or the installed unit's CAP_DAC_READ_SEARCH: nothing to say; neither: one reason."""
    assert reduced_coverage(euid=0, status=_status(tmp, 0)) == ""
    assert reduced_coverage(euid=998, status=_status(tmp, 1 << CAP_DAC_READ_SEARCH)) == ""
    reason = reduced_coverage(euid=1000, status=_status(tmp, 0))
    assert reason.startswith("running as uid 1000 without root or CAP_DAC_READ_SEARCH")
    assert "\n" not in reason


def test_a_library_warning_is_one_log_line(tmp: Path) -> None:
    """watchdog's RuntimeWarning for a re-added watch (a real InotifyFD) becomes one JSON line."""
    from watchdog.observers.inotify_c import InotifyConstants, InotifyFD

    class Callback:
        def __call__(self, *_: object) -> None: ...

        def on_watch_deleted(self, _wd: int) -> None: ...

    out = io.StringIO()
    sentinel_logging.configure("info", "json", stream=out)
    fd = InotifyFD()
    try:
        with pytest.warns(RuntimeWarning):  # pytest sees it ...
            fd.add_callback(str(tmp).encode(), InotifyConstants.IN_MODIFY, Callback(), "emitter")
            fd.add_callback(str(tmp).encode(), InotifyConstants.IN_MODIFY, Callback(), "emitter")
    finally:
        fd.close()
    # ... and outside pytest's recorder the configured hook writes it as a log line
    import warnings

    warnings.showwarning(
        "Callback with id 'x' already exists", RuntimeWarning, "/x/watchdog/observers/a.py", 7
    )
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["event"] == "library_warning" and entry["category"] == "RuntimeWarning"
    assert "already exists" in entry["message"] and entry["level"] == "warning"


def test_the_agent_without_root_logs_one_clear_coverage_line(nobody_dir: Path) -> None:
    """A real agent as uid 65534: a `coverage_reduced` line, every output line JSON, status says it."""
    prefix, env = unprivileged_python()
    port = free_port()
    config = write_config(nobody_dir, port=port, health=False)
    open_to_nobody(config)
    log_path = nobody_dir / "agent.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*prefix, "-m", "sentinel", "run", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=nobody_dir,
        )
        try:
            wait_until(lambda: "coverage_reduced" in log_path.read_text(), timeout=60)
            status = run_as_nobody("status", "--config", str(config), cwd=nobody_dir)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert proc.returncode == 0
    lines = log_path.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is a log line, nothing raw
    reduced = [e for e in events if e["event"] == "coverage_reduced"]
    assert len(reduced) == 1 and f"uid {NOBODY}" in reduced[0]["reason"]
    assert status.returncode == 0 and "coverage REDUCED" in status.stdout, status.stdout + status.stderr


def test_inspect_without_root_reports_an_unreadable_shadow_as_a_check_result(nobody_dir: Path) -> None:
    """`inspect` as uid 65534 against the real /etc/shadow: a result saying it was not checked."""
    if not Path("/etc/shadow").exists():
        pytest.skip("this machine has no /etc/shadow")
    (nobody_dir / "checks.d").mkdir()
    (nobody_dir / "checks.d" / "c.toml").write_text(SHADOW_CHECK)
    config = write_config(nobody_dir, health=False)
    open_to_nobody(config, nobody_dir / "checks.d", nobody_dir / "checks.d" / "c.toml")
    result = run_as_nobody("inspect", "--no-hazards", "--config", str(config), cwd=nobody_dir)
    assert "PermissionError" not in result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if "no_empty_passwords" in x)
    assert "not checked: /etc/shadow is not readable by this account (run as root)" in line, line
    assert result.stderr.startswith("sentinel: note: running as uid 65534 without root"), result.stderr
