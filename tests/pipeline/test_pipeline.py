"""The pipeline's queue: dropping producers and waiting (lossless) producers."""

from __future__ import annotations

import threading
from pathlib import Path

from sentinel.core.status import AgentStatus
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.pipeline.writer import Batch, Pipeline
from sentinel.rules.engine import RuleEngine
from sentinel.testing import FakeClock


def make(tmp: Path, capacity: int) -> tuple[Pipeline, HazardStore]:
    clock = FakeClock()
    store = HazardStore(tmp / "h.db", config=HazardsConfig(), terminal="t", branch="b", clock=clock)
    pipeline = Pipeline(
        store=store,
        engine=RuleEngine([], clock=clock),
        status=AgentStatus(clock=clock),
        capacity=capacity,
        clock=clock,
        put_timeout=0.01,
    )
    return pipeline, store


def test_a_full_queue_drops_counts_and_tells(tmp: Path) -> None:
    """With no writer draining, the second batch is dropped, counted, and submit answers False."""
    pipeline, store = make(tmp, capacity=1)
    try:
        assert pipeline.submit(Batch("fim", (), frozenset()))
        assert not pipeline.submit(Batch("fim", (), frozenset()))
        assert pipeline.status.counters()["dropped"] == {"fim": 1}
    finally:
        store.close()


def test_a_waiting_producer_gets_in_once_the_writer_drains(tmp: Path) -> None:
    """submit_waiting blocks on a full queue and succeeds when room appears; nothing is dropped."""
    pipeline, store = make(tmp, capacity=1)
    stop = threading.Event()
    try:
        pipeline.submit(Batch("auth", (), frozenset()))
        result: list[bool] = []
        producer = threading.Thread(
            target=lambda: result.append(pipeline.submit_waiting(Batch("auth", (), frozenset()), stop))
        )
        producer.start()
        assert not result  # still waiting: the queue is full
        pipeline.start()  # the writer drains
        producer.join(5)
        assert result == [True] and pipeline.status.counters()["dropped"] == {}
    finally:
        stop.set()
        pipeline.stop()
        store.close()


def test_a_waiting_producer_gives_up_when_stopping(tmp: Path) -> None:
    """On shutdown the wait ends (counted as dropped) instead of hanging the agent."""
    pipeline, store = make(tmp, capacity=1)
    stop = threading.Event()
    try:
        pipeline.submit(Batch("auth", (), frozenset()))
        stop.set()
        assert not pipeline.submit_waiting(Batch("auth", (), frozenset()), stop)
        assert pipeline.status.counters()["dropped"] == {"auth": 1}
    finally:
        store.close()
