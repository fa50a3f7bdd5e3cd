"""A real Prometheus (Debian's package) scraping a real agent: every rule expression evaluates,
and every metric a rule or dashboard panel reads has series."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.deploy.test_grafana import build_module
from tests.e2e.test_agent_process import BURNING_RULE
from tests.e2e.test_drills import DRILL_RULES
from tests.support.agent import AgentProcess
from tests.support.net import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").rglob("*.json"))
# Metrics whose producer may not be configured in this test agent; anything else must exist.
OPTIONAL = {
    # hardware: no sensors, fans, batteries or UPS in a virtual machine, no speed on a virtio link
    "sentinel_temperature_celsius",
    "sentinel_temperature_high_celsius",
    "sentinel_temperature_critical_celsius",
    "sentinel_fan_rpm",
    "sentinel_fan_min_rpm",
    "sentinel_battery_capacity_ratio",
    "sentinel_battery_discharging",
    "sentinel_power_supply_online",
    "sentinel_network_speed_bytes",
    "sentinel_service_up",  # only with [collectors.services] units configured
    # the processes detector is off here (it would judge the whole machine)
    "sentinel_exec_capture_mode",
    "sentinel_exec_events_total",
    "sentinel_exec_unresolved_total",
    "sentinel_exec_lost_total",
}
VARIABLES = {"job": "sentinel", "__rate_interval": "1m", "__interval": "1m"}  # others match anything
_NAME = re.compile(r"\b((?:sentinel|process|python)_[a-z0-9_]+|up)\b(?!\s*\()")


class Prometheus:
    def __init__(self, binary: str, directory: Path, target_port: int) -> None:
        self.port = free_port()
        rules = "\n".join(f"  - {p}" for p in RULE_FILES)
        (directory / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n{rules}\n"
            "scrape_configs:\n  - job_name: sentinel\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
            "        labels: {branch: '0101', terminal: t1}\n"
        )
        self.log = open(directory / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            body = exc.read()
            return dict(json.loads(body)) if body.startswith(b"{") else {}  # 503 while starting
        except OSError:  # not listening yet
            return {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def expressions() -> list[tuple[str, str]]:
    """(where, expr) for every rule and every dashboard panel target."""
    import yaml

    out: list[tuple[str, str]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((f"{path.name}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in _panels(board.get("panels", [])):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    expr = re.sub(r"\$\{?(\w+)\}?", lambda m: VARIABLES.get(m.group(1), ".*"), target["expr"])
                    out.append((f"{path.name}:{panel.get('title')}", expr))
    return out


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def integrity_section(watched: Path) -> str:
    """An [integrity] section watching `watched` (a change there makes the FIM change series)."""
    watched.mkdir()
    (watched / "teller.conf").write_text("limit = 1000\n")
    return f'\n[integrity]\nenabled = true\n[[integrity.watch]]\npath = "{watched}"\npolicy = "critical"\n'


@pytest.fixture
def prometheus(tmp: Path, start_agent: Any) -> Iterator[tuple[Prometheus, AgentProcess]]:
    binary = require_tool("prometheus", "prometheus")
    sink = '\n[[sinks]]\nname = "file"\ntype = "file"\npath = "tickets.jsonl"\n[collectors.listeners]\n'
    sink += "[collectors.packages]\n[collectors.usb]\n"  # the IT change panels: this machine's dpkg
    extra = DRILL_RULES + BURNING_RULE + sink + integrity_section(tmp / "watched")
    agent: AgentProcess = start_agent(extra)  # one hazard stays open
    wait_until(lambda: "sentinel_fim_baseline_info{" in agent.scrape(), timeout=30)
    (tmp / "watched" / "teller.conf").write_text("limit = 999999\n")  # sentinel_fim_changes_total
    wait_until(lambda: "sentinel_fim_changes_total{" in agent.scrape(), timeout=30)
    drill = subprocess.run(
        [sys.executable, "-m", "sentinel", "drill", "--scenario", "threshold", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert drill.returncode == 0, drill.stdout + drill.stderr
    prom_dir = tmp / "prom"
    prom_dir.mkdir()
    prom = Prometheus(binary, prom_dir, agent.port)
    try:
        wait_until(lambda: prom.query("count(sentinel_up)").get("data", {}).get("result"), timeout=30)
        wait_until(
            lambda: prom.query("count_over_time(sentinel_up[1m]) > 4").get("data", {}).get("result"),
            timeout=30,
        )
        yield prom, agent
    finally:
        prom.stop()


def test_every_rule_and_panel_expression_evaluates_on_real_data(
    prometheus: tuple[Prometheus, AgentProcess],
) -> None:
    """Each expression is valid PromQL for Prometheus, and each metric it reads has series."""
    prom, _agent = prometheus
    exprs = expressions()
    assert len(exprs) >= 25
    problems: list[str] = []
    for where, expr in exprs:
        answer = prom.query(expr)
        if answer.get("status") != "success":
            problems.append(f"{where}: {answer.get('error')}")
            continue
        for name in set(_NAME.findall(expr)):
            if name in OPTIONAL and not prom.query(f"count({{__name__=~'{name}'}})")["data"]["result"]:
                continue
            series = prom.query(f"count({{__name__='{name}'}})")["data"]["result"]
            if not series:
                problems.append(f"{where}: no series for {name}")
    assert problems == [], "\n".join(problems)


def test_recording_rules_produce_branch_series(prometheus: tuple[Prometheus, AgentProcess]) -> None:
    """The recording rules aggregate by the branch label that relabelling added."""
    prom, _agent = prometheus
    result = wait_until(lambda: prom.query("sentinel:terminals_up:sum")["data"]["result"], timeout=30)
    assert result[0]["metric"] == {"__name__": "sentinel:terminals_up:sum", "branch": "0101"}
    assert result[0]["value"][1] == "1"


def scraped_families(text: str) -> dict[str, str]:
    """Family name -> type, as a scrape declares them (a counter's family ends in _total; the
    `_created` gauge prometheus_client adds beside a counter or histogram is part of that one)."""
    declared = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    bases = {n.removesuffix("_total") for n, t in declared.items() if t == "counter"}
    bases |= {n for n, t in declared.items() if t in ("histogram", "summary")}
    return {
        n: t
        for n, t in declared.items()
        if not (n.endswith("_created") and n.removesuffix("_created") in bases)
    }


def test_every_family_of_a_live_scrape_is_charted_or_left_out_with_a_reason(
    prometheus: tuple[Prometheus, AgentProcess],
) -> None:
    """docs/dashboards.md's promise, against what a running agent really exports (not only what
    the docs list): each family is read by a board panel or in build.LEFT_OUT with its reason."""
    _prom, agent = prometheus
    build = build_module()
    covered = build.charted([build.fleet(), build.terminal()]) | set(build.LEFT_OUT)
    families = scraped_families(agent.scrape())
    assert len(families) >= 60 and "sentinel_fim_changes_total" in families  # a full agent's scrape
    missing = []
    for name, kind in sorted(families.items()):
        parts = ("_bucket", "_sum", "_count") if kind == "histogram" else ()
        names = {name} | {name + part for part in parts}
        if not names & covered:
            missing.append(f"{name} ({kind})")
    assert missing == [], "chart these in deploy/grafana/build.py or add them to LEFT_OUT with a reason"
