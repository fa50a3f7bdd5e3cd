"""Shared fixtures: leaked-thread detection, fake clock, temporary configs, external tools."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from sentinel.testing import FakeClock
from tests.support.accounts import Account, make_account
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port
from tests.support.unit import Sandbox

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the long fault-injection variants")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="long variant; run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every thread a test starts must be stopped and joined by the end of the test."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in leftover:
        thread.join(timeout=3)
    leaked = [t.name for t in leftover if t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@pytest.fixture(autouse=True)
def fresh_logging() -> Iterator[None]:
    """structlog back to its defaults after each test: a CLI test's stderr set-up must not leak."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def other() -> Iterator[Account]:
    """A real second account (created with useradd, removed after the test): the attacker of the
    symlink tests, or the agent's own account that root's CLI writes for."""
    yield from make_account(IN_CI)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A 0755 directory the second account can reach (pytest's tmp_path sits under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="sentinel-shared-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed point in time."""
    return FakeClock()


def require_tool(name: str, package: str) -> str:
    """The path of an external tool; skip (or fail under CI=true) when it is missing."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found: install it with `apt-get install {package}` (or run `make test` as root)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def promtool() -> str:
    """Path to promtool (Debian package prometheus)."""
    return require_tool("promtool", "prometheus")


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """A private temporary directory (0700), like the agent's state dir would be."""
    tmp_path.chmod(0o700)
    return tmp_path


@pytest.fixture
def start_agent(tmp: Path) -> Iterator[Any]:
    """Start real agents; every one is stopped at the end."""
    started: list[AgentProcess] = []

    def start(
        extra: str = "",
        *,
        health: bool = True,
        env: dict[str, str] | None = None,
        wait: bool = True,
        directory: Path | None = None,
        sandbox: Sandbox | None = None,
    ) -> AgentProcess:
        where = directory or tmp
        port = free_port()
        config = write_config(where, port=port, extra=extra, health=health)
        agent = AgentProcess(where, config, port, env, sandbox)
        started.append(agent)
        if wait:
            agent.wait_ready()
        return agent

    yield start
    for agent in started:
        agent.stop()
