"""The agent's ticket delivery: the dispatcher of the configured sinks, rebuilt when a reload
changes them, and what happens to tickets waiting for a sink that is gone."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import structlog

from sentinel.config.schema import Config
from sentinel.core.clock import Clock
from sentinel.core.model import Sample
from sentinel.hazards.schema import STORE_FILE
from sentinel.tickets.dispatcher import Dispatcher
from sentinel.tickets.outbox import Outbox

log = structlog.get_logger("sentinel.agent")

RETIRED = "sink no longer in the config; `sentinel tickets retry` resends once it is back"


class TicketDelivery:
    """Owns the (replaceable) dispatcher; the metrics and the writer reach it through here."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.dispatcher: Dispatcher | None = None
        self._lock = threading.Lock()

    def configure(self, config: Config, *, start: bool = False) -> None:
        """Deliver to `config`'s sinks: the old dispatcher finishes what is in flight and stops,
        tickets waiting for a removed sink are retired, a new dispatcher takes over the same
        outbox (the delivery counters of kept sinks carry over)."""
        with self._lock:
            old, self.dispatcher = self.dispatcher, None
        if old is not None:
            old.stop()
        self._retire_removed(config)
        new = None
        if any(s.enabled for s in config.sinks):
            new = Dispatcher(config.agent.state_dir / STORE_FILE, config.sinks, clock=self.clock)
            if old is not None:
                new.outcomes.update({k: n for k, n in old.outcomes.items() if k[0] in new.sinks})
        with self._lock:
            self.dispatcher = new
        if new is not None and start:
            new.start()

    def _retire_removed(self, config: Config) -> None:
        """Waiting tickets of a sink no longer configured (removed or renamed) are dead-lettered
        and logged, never silently stranded; a disabled sink is still configured and keeps them."""
        outbox = Outbox(config.agent.state_dir / STORE_FILE)
        try:
            retired = outbox.retire([s.name for s in config.sinks], RETIRED)
        finally:
            outbox.close()
        for sink, count in sorted(retired.items()):
            log.warning("tickets_retired", sink=sink, count=count, reason="sink removed from the config")

    def start(self) -> None:
        """Start delivering (after the agent's start-up)."""
        if self.dispatcher is not None:
            self.dispatcher.start()

    def stop(self) -> None:
        """Stop delivering (in-flight attempts finish, bounded by their timeouts)."""
        with self._lock:
            dispatcher, self.dispatcher = self.dispatcher, None
        if dispatcher is not None:
            dispatcher.stop()

    def wake(self, *_: object) -> None:
        """The writer committed a change: look at the outbox now."""
        dispatcher = self.dispatcher
        if dispatcher is not None:
            dispatcher.wake()

    def samples(self) -> Iterator[Sample]:
        """The dispatcher's series (none while no sink is configured)."""
        dispatcher = self.dispatcher
        return dispatcher.samples() if dispatcher is not None else iter(())
