"""`sentinel inspect`: a one-shot inspection of the terminal, and the report it produces.

The report has four parts: a health snapshot judged against the threshold rules, the file
integrity baseline check (when the integrity module provides one), the open and overdue hazards,
and the posture checks. Failed posture checks can raise hazards (`[inspect] raise_hazards`, and
per check `raise_hazard`), which auto-resolve when a later inspection finds the check passing.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sentinel.config.schema import Config
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.model import Category, Finding, Sample, Severity, freeze_fields
from sentinel.hazards.records import HazardRecord
from sentinel.inspect.checks import Check, CheckResult, Evaluator, validate_test
from sentinel.rules.config import RuleConfig
from sentinel.rules.text import all_match
from sentinel.rules.threshold import ThresholdRule

_META = {"id", "title", "category", "severity", "remediation", "rationale", "raise_hazard"}
RULE_PREFIX = "inspect."


@dataclass(frozen=True, slots=True)
class HealthLine:
    """One series judged against one threshold rule."""

    rule: str
    subject: str
    value: float
    verdict: str  # "ok" or the severity the value reaches


@dataclass
class Report:
    """Everything one inspection found."""

    terminal: str
    branch: str
    started_at: float
    checks: list[CheckResult] = field(default_factory=list)
    health: list[HealthLine] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    hazards: dict[str, Any] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckResult]:
        """Checks that failed or could not run."""
        return [c for c in self.checks if c.outcome in ("fail", "error")]

    @property
    def problems(self) -> bool:
        """Whether the inspection found anything to fix (exit code 1)."""
        baseline_bad = bool(self.baseline and not self.baseline.get("ok", True))
        health_bad = any(h.verdict != "ok" for h in self.health)
        trail_bad = not (self.hazards or {}).get("trail", {}).get("ok", True)
        return bool(self.failed or baseline_bad or health_bad or self.load_errors or trail_bad)

    def as_dict(self) -> dict[str, Any]:
        """The documented JSON form."""
        return {
            "terminal": self.terminal,
            "branch": self.branch,
            "started_at": _iso(self.started_at),
            "problems": self.problems,
            "summary": {
                o: sum(1 for c in self.checks if c.outcome == o) for o in ("pass", "fail", "skip", "error")
            },
            "checks": [
                {**asdict(c), "category": c.category.value, "severity": c.severity.value} for c in self.checks
            ],
            "health": [asdict(h) for h in self.health],
            "baseline": self.baseline,
            "hazards": self.hazards,
            "load_errors": self.load_errors,
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def load_checks(files: Iterable[Path]) -> tuple[list[Check], list[str]]:
    """Parse check files; (checks, one error line per problem). Duplicate ids are errors."""
    checks: list[Check] = []
    errors: list[str] = []
    seen: set[str] = set()
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{path}: cannot read: {exc}")
            continue
        except tomllib.TOMLDecodeError as exc:
            errors.append(f"{path}: invalid TOML: {exc}")
            continue
        extra = sorted(set(data) - {"checks"})
        if extra:
            errors.append(f"{path}: {extra[0]}: unknown key (a checks file holds only [[checks]])")
        for i, table in enumerate(data.get("checks", [])):
            where = f"{path}: checks[{i}]"
            check, problems = _parse_check(table, where, str(path))
            errors += problems
            if check is None:
                continue
            if check.id in seen:
                errors.append(f'{where}.id: another check is already named "{check.id}"')
                continue
            seen.add(check.id)
            checks.append(check)
    return checks, errors


def _parse_check(table: Any, where: str, source: str) -> tuple[Check | None, list[str]]:
    if not isinstance(table, dict):
        return None, [f"{where}: expected a table"]
    problems = [
        f"{where}.{k}: required key is missing"
        for k in ("id", "title", "category", "severity", "remediation")
        if k not in table
    ]
    try:
        category = Category(str(table.get("category")))
    except ValueError:
        problems.append(f"{where}.category: expected one of {', '.join(c.value for c in Category)}")
    try:
        severity = Severity(str(table.get("severity")))
    except ValueError:
        problems.append(f"{where}.severity: expected one of {', '.join(s.value for s in Severity)}")
    test = {k: v for k, v in table.items() if k not in _META}
    problems += validate_test(test, where)
    if problems:
        return None, problems
    return Check(
        id=str(table["id"]),
        title=str(table["title"]),
        category=category,
        severity=severity,
        remediation=str(table["remediation"]),
        test=test,
        raise_hazard=bool(table.get("raise_hazard", True)),
        source=source,
    ), []


def health_snapshot(
    rules: Sequence[RuleConfig], samples: Sequence[Sample], terminal: str = ""
) -> list[HealthLine]:
    """Each series of each threshold rule judged on its current value (no `for`, no predict)."""
    lines: list[HealthLine] = []
    by_name: dict[str, list[Sample]] = {}
    for sample in samples:  # relative_to rules read their reference metrics from the same snapshot
        by_name.setdefault(sample.name, []).append(sample)
    for config in rules:
        if not config.metric or config.predict is not None:
            continue
        rule = ThresholdRule(config, clock=SYSTEM_CLOCK, terminal=terminal)  # judging needs no time
        for sample in samples:
            if sample.name != config.metric:
                continue
            if not all_match(config.match, sample.label_map):
                continue
            verdict = rule.judge(sample.value, sample.labels, by_name)
            lines.append(
                HealthLine(
                    config.name, rule.subject(sample.labels), sample.value, verdict.value if verdict else "ok"
                )
            )
    return lines


def findings_for(results: Sequence[CheckResult], *, now: float) -> list[Finding]:
    """Firing findings for failed checks that raise hazards, cleared ones for passing checks."""
    out: list[Finding] = []
    for r in results:
        if not r.raise_hazard or r.outcome in ("skip", "error"):
            continue
        out.append(
            Finding(
                rule=RULE_PREFIX + r.id,
                subject=r.id,
                state="firing" if r.outcome == "fail" else "cleared",
                severity=r.severity,
                category=r.category,
                title=f"Inspection: {r.title} — failed",
                time=now,
                evidence=freeze_fields({"detail": r.detail[:500]}),
                rectification=(r.remediation,),
                auto_resolve=True,
            )
        )
    return out


def check_files(config: Config) -> list[Path]:
    """The check files the config points at (`[inspect] checks_dir`, *.toml in name order)."""
    directory = config.inspect.checks_dir or config.source.parent / "checks.d"
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def run_inspection(
    config: Config,
    *,
    collect_samples: Callable[[], Sequence[Sample]],
    evaluator: Evaluator | None = None,
    hazards_summary: Callable[[], dict[str, Any]] = dict,
    baseline_check: Callable[[], dict[str, Any] | None] = lambda: None,
    now: float,
) -> Report:
    """Run every part of the inspection and return the report."""
    report = Report(config.agent.terminal_id, config.agent.branch, now)
    checks, report.load_errors = load_checks(check_files(config))
    skip = set(config.inspect.skip)
    runner = evaluator or Evaluator(root=config.inspect.root)
    report.checks = [runner.evaluate(c) for c in checks if c.id not in skip]
    try:
        report.health = health_snapshot(config.enabled_rules, collect_samples(), config.agent.terminal_id)
    except Exception as exc:  # the snapshot is one part; the others still report
        report.load_errors.append(f"health snapshot failed: {type(exc).__name__}: {exc}")
    report.baseline = baseline_check()
    report.hazards = hazards_summary()
    return report


def summarise_hazards(records: Sequence[HazardRecord]) -> dict[str, Any]:
    """The report's hazards part: the active hazards and how many are overdue."""
    items = [
        {
            "id": r.id,
            "severity": r.severity.value,
            "title": r.title,
            "owner": r.owner,
            "deadline": r.deadline,
            "overdue": r.overdue,
            "state": r.state.value,
        }
        for r in records
    ]
    return {"open": len(items), "overdue": sum(1 for i in items if i["overdue"]), "items": items}
