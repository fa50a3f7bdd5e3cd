"""The outbox backlog (issue 19, item 10): agent CPU and restart-to-/metrics with N tickets
pending and the sink down.

The store is built with N open hazards, one undelivered ticket each, retried 8 times and due
again over the next five minutes (as a long outage leaves it); the webhook sink points at a
closed loopback port. Measured: the agent's CPU (share of one core) over a window after start,
and the time from starting the process to the first /metrics answer, both on the shipped config.
Goal (issue 19): CPU under 2 % of a core, restart to /metrics under 2 s, at 100,000 pending.
"""

from __future__ import annotations

import time

from bench.agentrun import shipped_config, start_agent, stop
from bench.harness import Context, Figure, Stats
from bench.procstat import cpu_seconds
from tests.support.backlog import build_backlog
from tests.support.net import free_port


def run(ctx: Context) -> list[Figure]:
    pending = 5_000 if ctx.quick else 100_000
    window = 5.0 if ctx.quick else 60.0
    rounds = 1 if ctx.quick else 3
    dead_port = free_port()
    sink = (
        f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:{dead_port}/down"\n'
        'unsigned = true\ntimeout = "2s"\n'
    )
    config, port = shipped_config(ctx.root, ctx.scratch, extra=sink)
    state = ctx.scratch / "state"
    state.mkdir(mode=0o700, exist_ok=True)
    build_backlog(state / "hazards.db", pending, time.time())
    starts, cpus = [], []
    for r in range(rounds):
        t0 = time.monotonic()
        proc = start_agent(config, port, ctx.scratch / f"agent{r}.log")
        starts.append(time.monotonic() - t0)
        try:
            time.sleep(3.0)  # past start-up: the steady cost of waiting with a backlog
            c0, w0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(window)
            cpus.append(100 * (cpu_seconds(proc.pid) - c0) / (time.monotonic() - w0))
        finally:
            stop(proc)
    load = f"{pending:,} tickets pending, sink down (connection refused), shipped config"
    return [
        Figure(
            f"agent CPU with {pending:,} tickets pending, sink down",
            "% of a core",
            Stats.of(cpus),
            goal="< 2 % at 100,000",
            met=max(cpus) < 2 if pending >= 100_000 else None,
            notes=f"{window:g} s window after a 3 s settle, {rounds} run(s)",
            load=load,
        ),
        Figure(
            f"start to first /metrics with {pending:,} tickets pending",
            "s",
            Stats.of(starts),
            goal="< 2 s at 100,000",
            met=max(starts) < 2 if pending >= 100_000 else None,
            load=load,
        ),
    ]
