"""psutil against Sentinel's own /proc and /sys readers, for the facts psutil can give.

    .venv/bin/python -m bench.psutil_readers [--runs N]

Prints, per fact, the median time of one reading each way on this machine, and whether psutil
can be pointed at a fixture tree (psutil.PROCFS_PATH) the way the collectors take `proc_root`.
Not part of `make bench`: it decided which reader the collectors use (issue 15).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from sentinel.sources.detectors.processes import ProcessesCollector, ProcessesConfig
from sentinel.sources.host.disks import DisksCollector, DisksConfig
from sentinel.sources.host.health import HealthCollector, HealthConfig
from sentinel.sources.host.network import NetworkCollector, NetworkConfig

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "health" / "terminal"


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm caches and imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    health = HealthCollector(HealthConfig())
    disks = DisksCollector(DisksConfig())
    network = NetworkCollector(NetworkConfig())
    processes = ProcessesCollector(ProcessesConfig())

    def psutil_processes() -> None:
        for p in psutil.process_iter(["name", "exe", "cmdline", "cpu_times", "create_time", "uids"]):
            _ = p.info

    def psutil_states() -> None:
        for p in psutil.process_iter(["status"]):
            _ = p.info

    rows = [
        ("cpu times", health._cpu_times, psutil.cpu_times),
        ("memory + swap", health._memory, lambda: (psutil.virtual_memory(), psutil.swap_memory())),
        ("load average", lambda: health._load(2), psutil.getloadavg),
        ("process states", health._processes, psutil_states),
        ("health, one whole run", health.collect, None),
        ("disk I/O per device", disks.collect, lambda: psutil.disk_io_counters(perdisk=True)),
        (
            "net I/O + link per interface",
            network.collect,
            lambda: (psutil.net_io_counters(pernic=True), psutil.net_if_stats()),
        ),
        ("process listing (exe, cmdline, cpu)", processes.collect, psutil_processes),
    ]
    print(f"{'fact':<38} {'Sentinel reader':>16} {'psutil':>10}   ({runs} runs, median)")
    for fact, ours, theirs in rows:
        mine = median_ms(ours, runs)
        other = f"{median_ms(theirs, runs):8.3f} ms" if theirs else "         -"
        print(f"{fact:<38} {mine:13.3f} ms {other}")
    psutil.PROCFS_PATH = str(FIXTURE / "proc")
    try:
        fixture = {
            "cpu_times": psutil.cpu_times().user,
            "virtual_memory": psutil.virtual_memory().total,
            "pids": len(psutil.pids()),
        }
    except Exception as exc:  # reporting whatever psutil makes of the fixture
        fixture = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        psutil.PROCFS_PATH = "/proc"
    print(f"psutil on the fixture tree (PROCFS_PATH, a process-wide global): {fixture}")


if __name__ == "__main__":
    main()
