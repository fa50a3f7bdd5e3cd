"""Device health: CPU cost of one collection, and /metrics scrape latency next to node_exporter.

- CPU per collection: every device collector (health, filesystems, disks, network, sensors,
  services, timesync) run once in this process, measured with process_time (all threads). The
  peer figure is node_exporter's CPU per scrape (it collects when scraped), read from its
  /proc/PID/stat over rounds of scrapes, since one scrape is below the 10 ms tick.
- Scrape latency: a real `sentinel run` agent and a real `prometheus-node-exporter`, both on
  loopback, scraped alternately (A B B A ...) over fresh connections; p50 and p99 of 500 each.
Goal (issue 23): Sentinel's scrape p50 at most 0.7 times node_exporter's. The p50 and p99 rows are
percentiles of the same samples, each with its own 95 % confidence interval.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.harness import Context, Figure, Stats, interleave
from sentinel.agent.wiring import build_collectors
from sentinel.config.loader import load
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.sources.base import PolledCollector
from sentinel.testing import wait_until
from tests.support.agent import AgentProcess, write_config
from tests.support.net import free_port

DEVICE = ("health", "filesystems", "disks", "network", "sensors", "services", "timesync")
TICK = os.sysconf("SC_CLK_TCK")


def _scrape(port: int) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
    finally:
        conn.close()
    return time.perf_counter() - started, body


def _samples(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def _device_collectors(ctx: Context) -> list[PolledCollector]:
    config = load(write_config(ctx.scratch / "collect"))
    built = [c for name, c in build_collectors(config, clock=SYSTEM_CLOCK) if name in DEVICE]
    return [c for c in built if isinstance(c, PolledCollector)]


class NodeExporter:
    """prometheus-node-exporter on a free loopback port, started and stopped by the bench."""

    def __init__(self, binary: str, scratch: Path) -> None:
        self.port = free_port()
        self._log = open(scratch / "node_exporter.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, timeout=15, interval=0.05)

    def _answers(self) -> bool:
        try:
            _scrape(self.port)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


def run(ctx: Context) -> list[Figure]:
    """Both figures; raises when node_exporter is missing (make bench installs it)."""
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        raise RuntimeError("prometheus-node-exporter not found: apt-get install prometheus-node-exporter")
    (ctx.scratch / "collect").mkdir()
    (ctx.scratch / "agent").mkdir()
    scrapes = 100 if ctx.quick else 500
    collections = 20 if ctx.quick else 100

    collectors = _device_collectors(ctx)
    for c in collectors:  # warm caches and the CPU utilisation baseline
        list(c.collect())

    port = free_port()
    agent = AgentProcess(ctx.scratch / "agent", write_config(ctx.scratch / "agent", port=port), port)
    node = NodeExporter(binary, ctx.scratch)
    try:
        agent.wait_ready()
        wait_until(lambda: b"sentinel_filesystem" in _scrape(port)[1], timeout=20)
        sentinel_samples, node_samples = _samples(_scrape(port)[1]), _samples(_scrape(node.port)[1])
        ctx.log(f"   samples per scrape: sentinel {sentinel_samples}, node_exporter {node_samples}")

        def collect_once() -> float:
            started = time.process_time()
            for c in collectors:
                list(c.collect())
            return time.process_time() - started

        def node_round() -> float:
            before = _cpu_seconds(node.proc.pid)
            for _ in range(20):
                _scrape(node.port)
            return (_cpu_seconds(node.proc.pid) - before) / 20

        cpu_sentinel = [collect_once() for _ in range(collections)]
        cpu_node = [node_round() for _ in range(max(collections // 10, 5))]
        lat_sentinel, lat_node = interleave(
            lambda: _scrape(port)[0], lambda: _scrape(node.port)[0], scrapes, warmup=10
        )
    finally:
        node.stop()
        agent.stop()

    ms = 1000.0
    cpu = Figure(
        name="Device health: CPU per collection",
        unit="ms CPU",
        sentinel=Stats.of([x * ms for x in cpu_sentinel]),
        peer=Stats.of([x * ms for x in cpu_node]),
        peer_name="node_exporter (CPU per scrape)",
        notes=(
            f"Sentinel: all {len(collectors)} device collectors once, process_time in-process "
            f"({collections} runs). node_exporter collects on each scrape; its CPU is read from "
            "/proc/PID/stat over rounds of 20 scrapes (tick granularity)."
        ),
        load=f"one collection at a time, {collections} runs; node_exporter: rounds of 20 scrapes",
        extra={"sentinel_collectors": [c.name for c in collectors]},
    )
    load = f"{scrapes} scrapes each, one at a time, interleaved A B B A, fresh connection, loopback"
    figures = [cpu]
    for q in (50, 99):
        figure = Figure(
            name=f"/metrics scrape latency p{q}",
            unit="ms",
            sentinel=Stats.percentile([x * ms for x in lat_sentinel], q),
            peer=Stats.percentile([x * ms for x in lat_node], q),
            peer_name="node_exporter",
            extra={"sentinel_samples": sentinel_samples, "node_exporter_samples": node_samples},
            load=load,
        )
        if q == 50:
            figure.goal = "≤ 0.7× node_exporter's p50"
            figure.met = figure.sentinel.median <= 0.7 * figure.peer.median  # type: ignore[union-attr]
        figures.append(figure)
    return figures
