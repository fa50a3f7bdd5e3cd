"""Which tickets a hazard transition makes: the Ticketer the composition root gives the store.

For each sink that wants the transition (sentinel.tickets.config.SinkConfig.wants), one outbox
row carrying the `sentinel.ticket/1` payload, all under the transition's idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sentinel.hazards.records import HazardRecord
from sentinel.hazards.trail import Ticket, Transition
from sentinel.tickets import payload
from sentinel.tickets.config import SinkConfig

SinkSelector = Callable[[HazardRecord, str], Sequence[str]]


def sinks_wanting(sinks: Sequence[SinkConfig]) -> SinkSelector:
    """The selector for a config's sinks: the names of those that want a transition."""

    def select(record: HazardRecord, transition: str) -> list[str]:
        return [s.name for s in sinks if s.wants(record, transition)]

    return select


class Ticketing:
    """Builds the outbox rows of one transition (a `sentinel.hazards.trail.Ticketer`)."""

    def __init__(self, *, terminal: str, branch: str, agent_version: str, sinks_for: SinkSelector) -> None:
        self.terminal = terminal
        self.branch = branch
        self.agent_version = agent_version
        self.sinks_for = sinks_for

    def tickets(self, transition: Transition) -> Sequence[Ticket]:
        """One row per sink that wants it, all with the same payload and idempotency key."""
        sinks = self.sinks_for(transition.record, transition.name)
        if not sinks:
            return ()
        key = payload.idempotency_key(transition.record.uid, transition.history_id)
        body = payload.encode(
            payload.build(
                record=transition.record,
                transition=transition.name,
                key=key,
                terminal=self.terminal,
                branch=self.branch,
                agent_version=self.agent_version,
                actor=transition.actor,
                at=transition.at,
                note=transition.note,
                store_id=transition.store_id,
                chain={
                    "seq": transition.chain.seq,
                    "hash": transition.chain.hash,
                    "prev_hash": transition.chain.prev_hash,
                    "row": transition.chain.row,
                },
                baseline_digest=transition.baseline_digest,
            )
        )
        return [Ticket(sink, body, key) for sink in sinks]
