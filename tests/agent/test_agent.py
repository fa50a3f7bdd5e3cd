"""The agent in-process: real threads, real SQLite, real HTTP scrapes on 127.0.0.1."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from sentinel.agent.lifecycle import Agent
from sentinel.agent.lock import AlreadyRunning, holder_pid
from sentinel.config.loader import load
from sentinel.config.schema import Config
from sentinel.core.model import MetricSpec, Sample
from sentinel.testing import wait_until
from tests.support.agent import write_config


class RaisingCollector:
    """A collector whose every run fails."""

    name = "raiser"
    interval = 0.05
    metrics = (MetricSpec("sentinel_test_raiser", "gauge", "never exported"),)

    def __init__(self) -> None:
        self.runs = 0

    def collect(self) -> Iterable[Sample]:
        self.runs += 1
        raise RuntimeError("sensor bus error")


class HangingCollector:
    """A collector stuck in its first run until released."""

    name = "hanger"
    interval = 0.05
    metrics = (MetricSpec("sentinel_test_hanger", "gauge", "never exported"),)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def collect(self) -> Iterable[Sample]:
        self.entered.set()
        self.release.wait(30)
        return [Sample.of("sentinel_test_hanger", 1)]


class CountingCollector:
    """A healthy collector."""

    name = "counter"
    interval = 0.05
    metrics = (MetricSpec("sentinel_test_value", "gauge", "a healthy reading", ("slot",)),)

    def __init__(self) -> None:
        self.runs = 0

    def collect(self) -> Iterable[Sample]:
        self.runs += 1
        return [Sample.of("sentinel_test_value", self.runs, slot="a")]


def scrape(agent: Agent) -> str:
    assert agent.address is not None
    host, port = agent.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def metric_value(text: str, line_prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def config(tmp: Path) -> Config:
    return load(write_config(tmp, health=False))


@pytest.fixture
def running(config: Config) -> Iterator[tuple[Agent, RaisingCollector, HangingCollector, CountingCollector]]:
    raiser, hanger, counter = RaisingCollector(), HangingCollector(), CountingCollector()
    agent = Agent(config, extra_collectors=[raiser, hanger, counter])
    agent.status.hung_after = 0.2
    agent.start()
    thread = threading.Thread(target=agent._loop, name="agent-loop")
    thread.start()
    try:
        yield agent, raiser, hanger, counter
    finally:
        hanger.release.set()
        agent.stop()
        thread.join(5)
        agent._teardown()


def test_raising_and_hanging_collectors_leave_the_rest_healthy(
    running: tuple[Agent, RaisingCollector, HangingCollector, CountingCollector],
) -> None:
    """A collector that raises is counted, one that hangs shows down; others and /metrics go on."""
    agent, raiser, hanger, counter = running
    assert hanger.entered.wait(5)
    wait_until(lambda: raiser.runs >= 3 and counter.runs >= 5)
    runs_before = counter.runs
    text = wait_until(
        lambda: (t := scrape(agent)) and 'sentinel_collector_up{collector="hanger"} 0.0' in t and t
    )
    assert 'sentinel_collector_up{collector="raiser"} 0.0' in text
    assert 'sentinel_collector_up{collector="counter"} 1.0' in text
    errors = metric_value(text, 'sentinel_collector_errors_total{collector="raiser"}')
    assert errors is not None and errors >= 3
    assert 'sentinel_test_value{slot="a"}' in text
    assert "sentinel_test_hanger" not in text.replace("# HELP", "").split("sentinel_collector_up")[0]
    wait_until(lambda: counter.runs > runs_before + 3)  # still running while the hanger hangs
    assert metric_value(text, "sentinel_up") == 1.0


def test_second_agent_on_same_state_dir_refuses(config: Config) -> None:
    """The state_dir lock names the running agent's pid."""
    first = Agent(config)
    first.start()
    try:
        assert holder_pid(config.agent.state_dir) is not None
        second = Agent(config)
        with pytest.raises(AlreadyRunning, match="already running on state_dir"):
            second.start()
    finally:
        first._teardown()
    assert holder_pid(config.agent.state_dir) is None


def test_state_dir_and_store_are_private(config: Config) -> None:
    """state_dir is 0700 and the store 0600."""
    agent = Agent(config)
    agent.start()
    agent._teardown()
    assert config.agent.state_dir.stat().st_mode & 0o777 == 0o700
    assert (config.agent.state_dir / "hazards.db").stat().st_mode & 0o777 == 0o600


class BrokenStreamingCollector:
    """A streaming collector whose start() fails (e.g. no inotify instance left)."""

    name = "broken_stream"
    metrics = (MetricSpec("sentinel_test_stream", "gauge", "never exported"),)

    def start(self, emit: object) -> None:
        raise OSError(24, "Too many open files")

    def stop(self) -> None:
        raise AssertionError("a collector that never started is not stopped")

    def current(self) -> Iterable[Sample]:
        return []


def test_a_collector_that_fails_to_start_is_disabled_and_the_agent_runs(config: Config) -> None:
    """start() raising: logged, shown disabled in status and /metrics; the others run."""
    counter = CountingCollector()
    agent = Agent(config, extra_collectors=[BrokenStreamingCollector(), counter])
    agent.start()
    try:
        wait_until(lambda: counter.runs >= 2)
        text = scrape(agent)
        assert 'sentinel_collector_up{collector="broken_stream"} 0.0' in text
        (broken,) = [c for c in agent.status.snapshot()["collectors"] if c["name"] == "broken_stream"]
        assert broken["enabled"] is False and "Too many open files" in broken["last_error"]
    finally:
        agent._teardown()
