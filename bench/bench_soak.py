"""Soak: the agent on the shipped config under mixed load for an hour (a minute with --quick).

Load: hazards raised and auto-resolved every few seconds (the drill probe toggled), each ticketed
to a real signed webhook receiver; CLI lifecycle commands in between; scrapes every 5 s. Sampled:
RSS, open file descriptors, the queue depth. Goals: RSS and fds flat (growth under 5 MB and 2 fds
from the first to the last tenth of the run), queue bounded, no error in the log.
Set SENTINEL_SOAK_SECONDS to change the duration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from bench import agentrun, procstat
from bench.harness import Context, Figure, Stats
from sentinel.sources.host.drill_probe import clear_probe, set_probe
from tests.support.net import WebhookReceiver, free_port

RULE = """
[[rules]]
name = "soak_probe"
category = "stability"
metric = "sentinel_drill_probe_value"
threshold = 1
op = ">="
severity = "minor"
title = "soak probe"
"""


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run(ctx: Context) -> list[Figure]:
    duration = float(os.environ.get("SENTINEL_SOAK_SECONDS") or (60 if ctx.quick else 3600))
    secret = ctx.scratch / "hook.secret"
    secret.write_bytes(b"soak")
    receiver = WebhookReceiver(b"soak", port=free_port()).start()
    sink = f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\nsecret_file = "{secret}"\n'
    config, port = agentrun.shipped_config(ctx.root, ctx.scratch, extra=RULE + sink)
    state = ctx.scratch / "state"
    agent = agentrun.start_agent(config, port, ctx.scratch / "agent.log")
    samples: list[tuple[float, float, int, float]] = []  # t, rss MB, fds, queue depth
    started = time.monotonic()
    step = 0
    try:
        while time.monotonic() - started < duration:
            if step % 2 == 0:
                set_probe(state, 1.0, until=time.time() + 60)
            else:
                clear_probe(state)
            if step % 5 == 4:
                subprocess.run(
                    [sys.executable, "-m", "sentinel", "hazards", "list", "--json", "--config", str(config)],
                    capture_output=True,
                    timeout=60,
                    check=False,
                )
            text = agentrun.scrape(port).decode()
            samples.append(
                (
                    time.monotonic() - started,
                    procstat.rss_bytes(agent.pid) / 1e6,
                    procstat.open_fds(agent.pid),
                    metric(text, "sentinel_queue_depth"),
                )
            )
            step += 1
            time.sleep(5)
    finally:
        clear_probe(state)
        agentrun.stop(agent)
        receiver.stop()
    tenth = max(1, len(samples) // 10)
    first, last = samples[:tenth], samples[-tenth:]
    rss_growth = Stats.of([max(s[1] for s in last) - max(s[1] for s in first)])
    fd_growth = Stats.of([float(max(s[2] for s in last) - max(s[2] for s in first))])
    queue = Stats.of([s[3] for s in samples])
    errors = 0
    for line in (ctx.scratch / "agent.log").read_text(errors="replace").splitlines():
        try:
            errors += json.loads(line).get("level") in ("error", "critical")
        except ValueError:
            continue
    note = f"{duration:.0f} s, {len(samples)} samples, {len(receiver.received)} tickets delivered"
    load = (
        f"{duration:.0f} s of mixed load: a hazard raised or resolved every 5 s (ticketed to a "
        "signed webhook), `hazards list` every 25 s, a scrape every 5 s"
    )
    return [
        Figure(
            "soak: RSS growth (first → last tenth)",
            "MB",
            rss_growth,
            goal="< 5 MB",
            met=rss_growth.median < 5,
            notes=note,
            load=load,
        ),
        Figure("soak: open fds growth", "fds", fd_growth, goal="≤ 2", met=fd_growth.median <= 2, load=load),
        Figure("soak: queue depth", "batches", queue, goal="max < 100", met=queue.max < 100, load=load),
        Figure(
            "soak: error lines in the log",
            "lines",
            Stats.of([float(errors)]),
            goal="0",
            met=errors == 0,
            load=load,
        ),
    ]
