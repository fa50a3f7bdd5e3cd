"""Idle overhead: the agent on the shipped config vs prometheus-node-exporter, both running and
scraped at the same interval in the same window. CPU seconds per minute (as % of one core) and
resident memory. Goals (issue 23): at most 0.25 % of a core and 40 MB RSS."""

from __future__ import annotations

import time

from bench import agentrun, procstat
from bench.harness import Context, Figure, Stats

CPU_GOAL = 0.25  # % of one core
RSS_GOAL_MB = 40.0


def _wait_for_first_scan(port: int, timeout: float = 300.0) -> float:
    """Seconds until the integrity monitor reports its first scan (0 when it is not enabled)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        text = agentrun.scrape(port).decode()
        if "sentinel_fim_" not in text or "sentinel_fim_last_scan_timestamp_seconds{" in text:
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


def run(ctx: Context) -> list[Figure]:
    window, interval = (20.0, 5.0) if ctx.quick else (120.0, 15.0)
    config, port = agentrun.shipped_config(ctx.root, ctx.scratch)
    agent = agentrun.start_agent(config, port, ctx.scratch / "agent.log")
    exporter, exporter_port = agentrun.start_node_exporter(ctx.scratch / "node_exporter.log")
    try:
        settle = _wait_for_first_scan(port)  # the first-start baseline is start-up work, not idle
        time.sleep(5)  # and the first collections
        cpu0 = {p.pid: procstat.cpu_seconds(p.pid) for p in (agent, exporter)}
        rss: dict[int, list[float]] = {agent.pid: [], exporter.pid: []}
        started = time.monotonic()
        while time.monotonic() - started < window:
            agentrun.scrape(port)
            agentrun.scrape(exporter_port)
            for pid, readings in rss.items():
                readings.append(procstat.rss_bytes(pid) / 1e6)
            time.sleep(interval)
        elapsed = time.monotonic() - started
        cpu = {pid: (procstat.cpu_seconds(pid) - c0) / elapsed * 100 for pid, c0 in cpu0.items()}
    finally:
        agentrun.stop(agent)
        agentrun.stop(exporter)
    agent_cpu, peer_cpu = Stats.of([cpu[agent.pid]]), Stats.of([cpu[exporter.pid]])
    agent_rss, peer_rss = Stats.of(rss[agent.pid]), Stats.of(rss[exporter.pid])
    load = f"idle, shipped config; both scraped every {interval:g} s for {elapsed:.0f} s"
    note = (
        f"{elapsed:.0f} s window, both scraped every {interval:g} s, shipped config; measured after the "
        f"first-start integrity scan ({settle:.1f} s)"
    )
    return [
        Figure(
            "idle CPU (% of one core)",
            "%",
            agent_cpu,
            peer_cpu,
            "node_exporter",
            goal=f"≤ {CPU_GOAL:g} %",
            met=agent_cpu.median <= CPU_GOAL,
            notes=note,
            load=load,
        ),
        Figure(
            "idle RSS",
            "MB",
            agent_rss,
            peer_rss,
            "node_exporter",
            goal=f"≤ {RSS_GOAL_MB:g} MB",
            met=agent_rss.max <= RSS_GOAL_MB,
            load=load,
        ),
    ]
