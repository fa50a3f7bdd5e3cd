"""Suspicious-event detectors: CPU cost of one poll on this machine, and its share of a core at
the detector's default interval.

Each detector runs against the real machine (/proc, /sys, /etc) with its shipped defaults; the
auth follower reads a temporary auth log that receives 200 real-format lines per poll (a busy
terminal under password guessing), since this machine's own auth log may be absent or idle. No
peer runs the same set of checks, so the figures stand against their goal: all detectors
together below 1 % of one core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bench.harness import Context, Figure, Stats
from sentinel.sources.detectors.accounts import AccountsCollector, AccountsConfig
from sentinel.sources.detectors.auth import AuthCollector, AuthConfig
from sentinel.sources.detectors.listeners import ListenersCollector, ListenersConfig
from sentinel.sources.detectors.outbound import OutboundCollector, OutboundConfig
from sentinel.sources.detectors.processes import ProcessesCollector, ProcessesConfig
from sentinel.sources.detectors.usb import UsbCollector, UsbConfig

LINES_PER_POLL = 200
GOAL_SHARE = 0.01  # all detectors together: under 1 % of one core


def cpu_seconds(fn: Callable[[], object]) -> float:
    """CPU time (user + system) of this process spent in one call."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def auth_poll(scratch: Path) -> tuple[Callable[[], object], float]:
    log = scratch / "auth.log"
    log.touch()
    config = AuthConfig(source="file", files=(log,))
    collector = AuthCollector(config, state_dir=scratch / "auth-state")
    stamp = time.strftime("%b %e %H:%M:%S")
    chunk = "".join(
        f"{stamp} teller01 sshd[{i}]: Failed password for invalid user u{i} "
        f"from 203.0.113.{i % 250} port 4{i:04d} ssh2\n"
        for i in range(LINES_PER_POLL)
    ).encode()

    def poll() -> object:
        with open(log, "ab") as fh:
            fh.write(chunk)
        return collector.poll_files(lambda items: True)

    return poll, float(config.poll_interval)


def run(ctx: Context) -> list[Figure]:
    rounds = 5 if ctx.quick else 20
    state = ctx.scratch
    auth, auth_interval = auth_poll(ctx.scratch)
    usb = UsbCollector(UsbConfig(), state_dir=state / "usb")
    detectors: list[tuple[str, Callable[[], object], float]] = [
        ("auth (200 lines/poll)", auth, auth_interval),
        ("usb (sysfs scan)", usb.scan, float(UsbConfig().interval)),
        ("listeners", ListenersCollector(ListenersConfig(), state_dir=state / "l").collect, 30.0),
        ("processes", ProcessesCollector(ProcessesConfig()).collect, float(ProcessesConfig().interval)),
        ("outbound", OutboundCollector(OutboundConfig()).collect, float(OutboundConfig().interval)),
        ("accounts (no SUID scan)", _accounts(state, suid=False), float(AccountsConfig().interval)),
        ("accounts SUID scan", _accounts(state, suid=True), float(AccountsConfig().suid_interval)),
    ]
    figures: list[Figure] = []
    total_share = 0.0
    for name, fn, interval in detectors:
        fn()  # warm-up: first runs learn baselines and fill caches
        costs = [cpu_seconds(fn) * 1000 for _ in range(rounds)]
        stats = Stats.of(costs)
        share = stats.median / 1000 / interval
        total_share += share
        ctx.log(f"   {name}: {stats.median:.2f} ms CPU per poll, {share:.4%} of a core every {interval:g} s")
        figures.append(
            Figure(
                name=f"detector CPU per poll: {name}",
                unit="ms",
                sentinel=stats,
                notes=f"default interval {interval:g} s → {share:.4%} of one core",
                load=f"one poll at a time, in-process, {rounds} polls (CPU time, all threads)",
                extra={"interval_seconds": interval, "core_share": share},
            )
        )
    figures.append(
        Figure(
            name="all detectors: share of one core at default intervals",
            unit="%",
            sentinel=Stats.of([total_share * 100]),
            goal=f"< {GOAL_SHARE:.0%} of one core",
            met=total_share < GOAL_SHARE,
            load="each detector's CPU per poll × its polls per second at the default intervals",
        )
    )
    return figures


def _accounts(state: Path, *, suid: bool) -> Callable[[], object]:
    collector = AccountsCollector(AccountsConfig(), state_dir=state / ("a-suid" if suid else "a"))

    def poll() -> object:
        if suid:
            collector._next_suid = float("-inf")  # force the hourly SUID walk now
        else:
            collector._next_suid = float("inf")
        return collector.collect()

    return poll
