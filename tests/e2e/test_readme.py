"""Every shell command in README.md, run as written in a fresh copy of the checkout.

Long-running commands (`make run`, `make local-monitoring`) are started, waited for (the agent's
/metrics, the monitoring's READY line) and stopped with Ctrl-C's signal at the end; `make test`
and `make bench` are only checked to exist (`make -n`: running the suite inside itself, or the
benchmarks, is not this test's job). The one thing changed is the port: 9787 may be taken on a
shared machine, so the copy gets a drop-in with a free port and the commands say that port.

The default variant gives the copy a virtualenv that runs this checkout's installed libraries
(seconds); with --slow (CI) `make run` builds the copy's own virtualenv from nothing, as a fresh
clone does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.support.net import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHIPPED_PORT = "9787"
LONG_RUNNING = {"make run": "agent", "make local-monitoring": "monitoring"}
NOT_RUN = {"make test", "make bench"}  # checked with `make -n` only


def readme_commands() -> list[str]:
    """The command lines of the README's ```sh blocks, comments stripped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL):
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def test_the_readme_has_commands_and_links_only_inside_the_repository() -> None:
    """The commands an operator needs are there; no link leaves the clone (no ../shared)."""
    commands = readme_commands()
    assert "make run" in commands and "make test" in commands
    assert any(c.startswith(".venv/bin/sentinel status") for c in commands)
    for target in re.findall(r"\]\(([^)]+)\)", README.read_text()):
        assert not target.startswith(("../", "/")) and "shared/" not in target, target
        if not target.startswith("http"):
            assert (ROOT / target.split("#")[0]).exists(), target


@dataclass
class Copy:
    """A fresh copy of the checkout, its free port and what was started in it."""

    path: Path
    port: int
    env: dict[str, str]
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, command: str, what: str) -> None:
        out = self.path / f"{what}.out"
        with open(out, "wb") as log:
            proc = subprocess.Popen(
                ["bash", "-c", command],
                cwd=self.path,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # Ctrl-C goes to the whole group, as on a terminal
            )
        self.started.append((proc, out))
        if what == "agent":
            wait_until(lambda: self.scrape_ok() or proc.poll() is not None, timeout=600)
        else:
            wait_until(lambda: "READY" in out.read_text() or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, f"{command} exited {proc.returncode}:\n{out.read_text()[-3000:]}"

    def scrape_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                return b"sentinel_up 1.0" in r.read()
        except OSError:
            return False

    def stop_all(self) -> list[str]:
        """Ctrl-C (SIGINT) each, newest first; the problems of any that did not stop cleanly."""
        problems = []
        for proc, out in reversed(self.started):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
                    problems.append(f"did not stop on Ctrl-C:\n{out.read_text()[-2000:]}")
        return problems


def _copy_checkout(target: Path) -> None:
    """The tracked files as they are in this working tree (what a clone of this commit holds)."""
    files = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            destination = target / os.fsdecode(name)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def _borrowed_venv(copy: Path) -> None:
    """`.venv` for the copy in seconds: its own interpreter, this checkout's installed libraries
    on its path, the copy's own code first, a `sentinel` script, and make's stamps set."""
    venv = copy / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run(
        [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    Path(site, "borrowed.pth").write_text(f"{copy}\n{sysconfig.get_paths()['purelib']}\n")
    script = venv / "bin" / "sentinel"
    script.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom sentinel.cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    for stamp in (".installed-run", ".installed-test"):
        (venv / stamp).touch()


@pytest.fixture(
    params=[pytest.param("borrowed", id="borrowed-venv"), pytest.param("fresh", marks=pytest.mark.slow)]
)
def checkout(request: pytest.FixtureRequest, tmp: Path) -> Iterator[Copy]:
    require_tool("make", "make")
    path = tmp / "sentinel"
    _copy_checkout(path)
    if request.param == "borrowed":
        _borrowed_venv(path)
    port = free_port()
    drop_in = f'# written by tests/e2e/test_readme.py: a free port\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
    for conf_d in (path / "config" / "conf.d", path / "var" / "run-local" / "agent" / "conf.d"):
        conf_d.mkdir(parents=True, exist_ok=True)  # the second is where `make run` with a hub looks
        (conf_d / "90-test-port.toml").write_text(drop_in)
    env = {
        **os.environ,
        "PROM_PORT": str(free_port()),
        "AM_PORT": str(free_port()),
        "AGENT": f"127.0.0.1:{port}",
        "HUB_PORT": str(free_port()),
        "LOCAL_MONITORING_DIR": str(path / "var" / "local-monitoring"),
    }
    env.pop("SENTINEL_CONFIG", None)
    copy = Copy(path, port, env)
    try:
        yield copy
    finally:
        copy.stop_all()


@pytest.mark.timeout(1800)
def test_every_readme_command_runs_as_written(checkout: Copy) -> None:
    """Each command exits 0 (long-running ones serve, then stop on Ctrl-C); make test/bench exist."""
    require_tool("prometheus", "prometheus")
    failures: list[str] = []
    for command in readme_commands():
        if command in NOT_RUN:
            dry = subprocess.run(
                ["make", "-n", command.split()[1]],
                cwd=checkout.path,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if dry.returncode != 0:
                failures.append(f"{command}: no such target: {dry.stderr}")
            continue
        if command in LONG_RUNNING:
            checkout.start(command, LONG_RUNNING[command])
            continue
        run = subprocess.run(
            ["bash", "-c", command.replace(SHIPPED_PORT, str(checkout.port))],
            cwd=checkout.path,
            capture_output=True,
            text=True,
            timeout=300,
            env=checkout.env,
        )
        if run.returncode != 0:
            failures.append(f"{command}: exit {run.returncode}\n{run.stdout[-1500:]}{run.stderr[-1500:]}")
    failures += checkout.stop_all()
    assert failures == [], "\n\n".join(failures)
