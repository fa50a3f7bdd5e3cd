"""Signal handlers take no lock: a SIGHUP storm cannot freeze the agent.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread
is inside a log write and holds the writer's lock. The agent froze that way under 100 SIGHUPs in
10 s (tests/faults/test_reload_storm.py; a py-spy dump showed `on_hup` re-entered inside
structlog's `PrintLogger.msg`). Here a thread is held inside a log write; each installed handler
is then called from another thread: a handler that logged would wait for the held lock.
"""

from __future__ import annotations

import io
import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from sentinel.agent.lifecycle import Agent
from sentinel.config.loader import load
from sentinel.core import logging as sentinel_logging
from tests.support.agent import write_config

SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)


class StuckStream(io.StringIO):
    """A log stream whose first write blocks until released (a writer interrupted mid-line)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(30)
        return super().write(text)


@pytest.fixture
def agent(tmp: Path) -> Iterator[Agent]:
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    agent = Agent(load(write_config(tmp, health=False)))
    agent.install_signal_handlers()
    try:
        yield agent
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        agent._wake.close()
        sentinel_logging.configure(fmt="json")


def test_handlers_return_while_the_log_writer_is_held(agent: Agent) -> None:
    """With a log write stuck halfway, every handler returns at once and the loop acts afterwards."""
    stream = StuckStream()
    sentinel_logging.configure(fmt="json", stream=stream)
    writer = threading.Thread(target=lambda: structlog.get_logger("t").info("held"), daemon=True)
    writer.start()
    assert stream.entered.wait(10)
    for signum in SIGNALS:
        handler = signal.getsignal(signum)
        assert callable(handler)
        call = threading.Thread(target=handler, args=(signum, None), daemon=True)
        call.start()
        call.join(5)
        assert not call.is_alive(), f"the {signal.Signals(signum).name} handler waited for the log lock"
    stream.release.set()
    writer.join(10)

    agent._wake.wait(0)
    agent._handle_signals()
    assert agent._reload_requested and agent._stopping
    seen = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["signal"] for e in seen if e["event"] == "signal_received"] == ["SIGHUP", "SIGTERM", "SIGINT"]


def test_a_signal_wakes_the_waiting_loop(agent: Agent) -> None:
    """The loop's wait returns when a handler runs, long before its tick."""
    woke = threading.Event()

    def wait() -> None:
        agent._wake.wait(60)
        woke.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    handler = signal.getsignal(signal.SIGHUP)
    assert callable(handler)
    handler(signal.SIGHUP, None)
    assert woke.wait(10)
    assert agent._wake.signals() == [signal.SIGHUP]
