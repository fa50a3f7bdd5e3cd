"""The shipped Prometheus rules pass promtool's checks and their own unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def test_rules_pass_promtool_check(promtool: str) -> None:
    """promtool check rules: every file valid."""
    files = sorted(str(p) for p in (PROM / "rules").glob("*.yml"))
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    """promtool test rules: the alert and recording rule unit tests, every file."""
    files = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.test.yml"))
    assert len(files) >= 4
    result = subprocess.run(
        [promtool, "test", "rules", *files],
        cwd=PROM,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.count("SUCCESS") == len(files), (
        result.stdout + result.stderr
    )


def test_every_shipped_prometheus_config_passes_promtool(promtool: str, tmp: Path) -> None:
    """`promtool check config` passes on every shipped config: the local one as it is, the
    production one (mutual TLS) once its certificate files are in place, as on a real server."""
    from tests.support.pki import make_test_pki

    configs = sorted(PROM.glob("prometheus*.yml"))
    assert {p.name for p in configs} == {"prometheus.yml", "prometheus-local.yml"}
    local = subprocess.run(
        [promtool, "check", "config", "prometheus-local.yml"],
        cwd=PROM,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert local.returncode == 0, local.stdout + local.stderr
    # the production layout: /etc/prometheus/{prometheus.yml, rules/, sentinel/{ca,prometheus}.pem}
    etc = tmp / "etc-prometheus"
    shutil.copytree(PROM / "rules", etc / "rules")
    shutil.copy(PROM / "prometheus.yml", etc)
    pki = make_test_pki(tmp / "pki")
    (etc / "sentinel").mkdir()
    shutil.copy(pki / "ca.pem", etc / "sentinel" / "ca.pem")
    shutil.copy(pki / "client.pem", etc / "sentinel" / "prometheus.pem")
    shutil.copy(pki / "client.key", etc / "sentinel" / "prometheus.key")
    production = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=etc, capture_output=True, text=True, timeout=60
    )
    assert production.returncode == 0, production.stdout + production.stderr
    assert "3 rule files found" in production.stdout + production.stderr


def test_the_local_alertmanager_config_is_valid() -> None:
    """amtool check-config passes on both shipped Alertmanager configs."""
    from tests.conftest import require_tool

    amtool = require_tool("amtool", "prometheus-alertmanager")
    for name in ("alertmanager.yml", "alertmanager-local.yml"):
        result = subprocess.run(
            [amtool, "check-config", str(PROM.parent / "alertmanager" / name)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
