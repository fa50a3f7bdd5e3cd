"""The composition root: builds the collectors and the hazard store the same way for the agent and
the CLI, so that a transition made from the command line is ticketed exactly as one made by the
agent (the inspection and baseline parts: sentinel.agent.inspection)."""

from __future__ import annotations

import dataclasses

from sentinel.agent.store import open_store
from sentinel.config.schema import Config
from sentinel.core.clock import Clock
from sentinel.sources.base import Collector, Context
from sentinel.sources.registry import registrations

__all__ = ["Built", "build_collectors", "open_store"]  # open_store: its home is sentinel.agent.store

Built = Collector | Exception


def build_collectors(config: Config, *, clock: Clock) -> list[tuple[str, Built]]:
    """(name, collector or the error that prevented building it) for every enabled collector.

    A collector whose constructor fails is returned as the exception, so the agent can log it,
    show it as disabled in /metrics and `sentinel status`, and keep running (DESIGN §4.1).
    """
    context = Context(state_dir=config.agent.state_dir, clock=clock)
    out: list[tuple[str, Built]] = []
    # the software inventory first: the integrity monitor and the process detector ask it
    for registration in sorted(registrations(), key=lambda r: r.oracle is None):
        settings = config.section(registration.path)
        if not registration.enabled(settings):
            continue
        try:
            built = registration.build(settings, context)
        except Exception as exc:  # contained: a broken collector must not stop the agent
            out.append((registration.name, exc))
            continue
        out.append((registration.name, built))
        oracle = registration.oracle(built) if registration.oracle is not None else None
        if oracle is not None:
            context = dataclasses.replace(context, packages=oracle)
    return out
