"""The shipped Prometheus rules pass promtool's checks and their own unit tests."""

from __future__ import annotations

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
    assert len(files) >= 2
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


def test_scrape_config_example_is_valid(promtool: str) -> None:
    """The example scrape config has valid syntax (its TLS files exist only on a real server)."""
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", "prometheus.yml"],
        cwd=PROM,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
