"""CLI start-up: `sentinel --help`, `status` and `hazards list` beside the interpreter's own start.

Each command is a fresh process (the console entry `python -m sentinel`), run in rotating order
with `python3 -c pass` (the floor) after one unrecorded round; wall time and the process's CPU
time (user + system, from wait4) per run. Twice: with Sentinel's bytecode compiled (as an
installed agent has it: pip compiles on install) and without it (a source checkout under
PYTHONDONTWRITEBYTECODE=1, as in this sandbox). The goal, ≤ 120 ms and ≤ 6 times the floor, applies
with bytecode. `status` and `hazards list` read a small store (20 hazards) of a config that is
not running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Context, Figure, Stats

GOAL_MS, GOAL_RATIO = 120.0, 6.0


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _store(ctx: Context) -> Path:
    """A config whose state_dir holds a store with 20 hazards."""
    from sentinel.core.clock import SYSTEM_CLOCK
    from sentinel.core.model import Category, Finding, Severity
    from sentinel.hazards.config import HazardsConfig
    from sentinel.hazards.store import HazardStore

    state = ctx.scratch / "state"
    state.mkdir()
    store = HazardStore(
        state / "hazards.db", config=HazardsConfig(), terminal="t", branch="b", clock=SYSTEM_CLOCK
    )
    for i in range(20):
        store.apply(
            Finding(
                rule="r",
                subject=f"s{i}",
                state="firing",
                severity=Severity.MAJOR,
                category=Category.STABILITY,
                title=f"hazard {i}",
                time=time.time(),
            )
        )
    store.close()
    config = ctx.scratch / "sentinel.toml"
    config.write_text(f'[agent]\nstate_dir = "{state}"\nbranch = "b"\n')
    return config


def _bytecode(root: Path, compiled: bool) -> None:
    package = root / "sentinel"
    for cache in package.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    if compiled:  # what `pip install` leaves (it compiles every module)
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(package)], check=True, capture_output=True
        )


def run(ctx: Context) -> list[Figure]:
    rounds = 5 if ctx.quick else 30
    config = _store(ctx)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    sentinel = [sys.executable, "-m", "sentinel"]
    commands = {
        "floor": [sys.executable, "-c", "pass"],
        "--help": [*sentinel, "--help"],
        "status": [*sentinel, "status", "--config", str(config)],
        "hazards list": [*sentinel, "hazards", "list", "--config", str(config)],
    }
    figures = []
    for compiled in (True, False):
        _bytecode(ctx.root, compiled)
        names = list(commands)
        for name in names:
            _run(commands[name], env)  # warm-up
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                w, c = _run(commands[name], env)
                wall[name].append(w * 1000)
                cpu[name].append(c * 1000)
        floor_wall, floor_cpu = Stats.of(wall["floor"]), Stats.of(cpu["floor"])
        mode = "with bytecode (installed)" if compiled else "without bytecode (source, not compiled)"
        load = f"one process at a time, {rounds} rounds in rotating order, {mode}"
        for name in names[1:]:
            w, c = Stats.of(wall[name]), Stats.of(cpu[name])
            ratio = w.median / floor_wall.median
            figure = Figure(
                f"CLI start: sentinel {name}, {mode}",
                "ms",
                w,
                floor_wall,
                "python3 -c pass",
                load=load,
                notes=(
                    f"{ratio:.1f}× the floor in wall time; CPU {c.median:.0f} ms "
                    f"({c.median / floor_cpu.median:.1f}× the floor's {floor_cpu.median:.0f} ms)"
                ),
                extra={"cpu_ms": c.median, "floor_cpu_ms": floor_cpu.median},
            )
            if compiled:
                figure.goal = f"≤ {GOAL_MS:g} ms and ≤ {GOAL_RATIO:g}× the floor (with bytecode)"
                figure.met = w.median <= GOAL_MS and ratio <= GOAL_RATIO
            figures.append(figure)
    _bytecode(ctx.root, True)  # leave it as installed
    return figures
