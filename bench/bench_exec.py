"""Exec capture: what the agent's CPU costs while 100 programs a second start, with every exec
seen through the proc connector, against the same agent finding processes by its scan only.

Two real `sentinel run` processes on the shipped config (integrity monitor off: its first-start
baseline would dominate) run side by side: one with
`exec_capture = "auto"` (the proc connector), one with `exec_capture = "poll"`. A generator
process starts `sleep 0.01` 100 times a second (`os.posix_spawn`, no shell; ordinary programs, so
no hazard is raised and the figure is the capture itself). Idle and loaded windows alternate;
each agent's CPU comes from /proc/PID/stat. The connector agent's `sentinel_exec_events_total`
says how many execs it received (other programs on the machine count too).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

from bench.agentrun import scrape, shipped_config, start_agent, stop
from bench.harness import Context, Figure, Stats
from bench.procstat import cpu_seconds

RATE = 100  # execs per second
GOAL_EXTRA = 0.03  # exec capture: under 3 % of one core more than the scan alone, at 100 execs/s
GENERATOR = """
import os, sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
started, n, children = time.monotonic(), 0, []
while (now := time.monotonic()) < started + seconds:
    children.append(os.posix_spawn("/bin/sleep", ["sleep", "0.01"], os.environ))
    n += 1
    time.sleep(max(0.0, started + n / rate - time.monotonic()))
    while children and os.waitpid(children[0], os.WNOHANG)[0]:
        children.pop(0)
for pid in children:
    os.waitpid(pid, 0)
print(n)
"""


def _exec_events(port: int) -> float:
    found = re.search(rb"^sentinel_exec_events_total ([0-9.e+]+)$", scrape(port), re.M)
    return float(found.group(1)) if found else 0.0


def _window(
    agents: dict[str, tuple[subprocess.Popen[bytes], int]], seconds: float, load: bool
) -> dict[str, float]:
    """Each agent's share of one core over one window, idle or under the exec load."""
    before = {name: cpu_seconds(proc.pid) for name, (proc, _port) in agents.items()}
    events = _exec_events(agents["connector"][1])
    started = time.monotonic()
    spawned = 0
    if load:
        out = subprocess.run(
            [sys.executable, "-c", GENERATOR, str(RATE), str(seconds)],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
        spawned = int(out.stdout.strip())
    else:
        time.sleep(seconds)
    wall = time.monotonic() - started
    time.sleep(0.5)  # let the last events be read
    shares = {name: (cpu_seconds(proc.pid) - before[name]) / wall for name, (proc, _port) in agents.items()}
    if load:
        shares["seen"] = (_exec_events(agents["connector"][1]) - events) / max(1, spawned)
    return shares


def run(ctx: Context) -> list[Figure]:
    seconds = 3.0 if ctx.quick else 20.0
    rounds = 1 if ctx.quick else 3
    agents: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for mode in ("auto", "poll"):
            scratch = ctx.scratch / mode
            scratch.mkdir()
            # the integrity monitor's first-start baseline is not what is measured here
            extra = f'\n[collectors.processes]\nexec_capture = "{mode}"\n\n[integrity]\nenabled = false\n'
            config, port = shipped_config(ctx.root, scratch, extra)
            name = "connector" if mode == "auto" else "poll"
            agents[name] = (start_agent(config, port, scratch / "agent.log"), port)
        mode_line = scrape(agents["connector"][1])
        if b'sentinel_exec_capture_mode{mode="connector"} 1.0' not in mode_line:
            ctx.log("   the proc connector is not available here: no exec capture figures")
            return []
        time.sleep(8.0 if ctx.quick else 30.0)  # past start-up work (the first SUID walk, baselines)
        idle: dict[str, list[float]] = {"connector": [], "poll": []}
        loaded: dict[str, list[float]] = {"connector": [], "poll": [], "seen": []}
        for _ in range(rounds):  # idle and loaded windows alternate
            for name, share in _window(agents, seconds, load=False).items():
                idle[name].append(share * 100)
            for name, share in _window(agents, seconds, load=True).items():
                loaded[name].append(share * 100)
    finally:
        for proc, _port in agents.values():
            stop(proc)
    extra = [c - p for c, p in zip(loaded["connector"], loaded["poll"], strict=True)]
    paced = f"paced: `sleep 0.01` started {RATE} times a second, shipped config otherwise"
    quiet = "idle: no programs started by the bench, shipped config otherwise"
    connector, poll, seen = (Stats.of(loaded[k]).median for k in ("connector", "poll", "seen"))
    ctx.log(f"   at {RATE} execs/s: connector {connector:.2f} %, scan only {poll:.2f} % of a core")
    ctx.log(f"   exec events received per program started: {seen:.1f} %")
    return [
        Figure(
            name=f"agent CPU at {RATE} execs/s with exec capture",
            unit="% of one core",
            sentinel=Stats.of(loaded["connector"]),
            peer=Stats.of(loaded["poll"]),
            peer_name="the same agent, scan only (exec_capture = poll)",
            notes="sleep 0.01 started 100 times a second; shipped config otherwise",
            load=paced,
        ),
        Figure(
            name=f"exec capture's extra CPU at {RATE} execs/s",
            unit="% of one core",
            sentinel=Stats.of(extra),
            goal=f"< {GOAL_EXTRA:.0%} of one core",
            met=Stats.of(extra).median < GOAL_EXTRA * 100,
            load=paced,
        ),
        Figure(
            name="agent CPU idle with exec capture",
            unit="% of one core",
            sentinel=Stats.of(idle["connector"]),
            peer=Stats.of(idle["poll"]),
            peer_name="the same agent, scan only",
            load=quiet,
        ),
        Figure(
            name=f"execs received per program started at {RATE}/s",
            unit="%",
            sentinel=Stats.of(loaded["seen"]),
            better="higher",
            goal=">= 100 % (other programs on the machine count too)",
            met=Stats.of(loaded["seen"]).min >= 100.0,
            load=paced,
        ),
    ]
