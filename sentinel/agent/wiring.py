"""The composition root: builds the collectors and the hazard store the same way for the agent and
the CLI, so that a transition made from the command line is ticketed exactly as one made by the
agent (the inspection and baseline parts: sentinel.agent.inspection)."""

from __future__ import annotations

from sentinel import __version__
from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK, Clock
from sentinel.hazards.schema import STORE_FILE
from sentinel.hazards.store import HazardStore
from sentinel.sources.base import Collector, Context
from sentinel.sources.registry import registrations
from sentinel.tickets.ticketing import Ticketing, sinks_wanting

Built = Collector | Exception


def open_store(config: Config, *, clock: Clock = SYSTEM_CLOCK) -> HazardStore:
    """The hazard store of `config`, ticketing to the config's sinks."""
    ticketing = Ticketing(
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        agent_version=__version__,
        sinks_for=sinks_wanting(config.sinks),
    )
    return HazardStore(
        config.agent.state_dir / STORE_FILE,
        config=config.hazards,
        terminal=config.agent.terminal_id,
        branch=config.agent.branch,
        clock=clock,
        ticketer=ticketing,
    )


def build_collectors(config: Config, *, clock: Clock) -> list[tuple[str, Built]]:
    """(name, collector or the error that prevented building it) for every enabled collector.

    A collector whose constructor fails is returned as the exception, so the agent can log it,
    show it as disabled in /metrics and `sentinel status`, and keep running (DESIGN §4.1).
    """
    context = Context(state_dir=config.agent.state_dir, clock=clock)
    out: list[tuple[str, Built]] = []
    for registration in registrations():
        settings = config.section(registration.path)
        if not registration.enabled(settings):
            continue
        try:
            out.append((registration.name, registration.build(settings, context)))
        except Exception as exc:  # contained: a broken collector must not stop the agent
            out.append((registration.name, exc))
    return out
