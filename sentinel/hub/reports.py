"""Reports a branch safety committee reads: the fleet ledger export and the inspection report.

- `export_ledger`: the rectification ledger of an org unit for a period, as markdown, CSV or JSON.
  The markdown and CSV bodies are sentinel.hazards.export's (the same ledger a terminal exports,
  formula-safe CSV), with the terminal and branch of each row added; JSON carries each record
  with its full trail as the hub holds it.
- `inspection_report`: the year-end (the year reviewed) or year-start (what the year begins with)
  report per org unit: hazards found by category and severity, rectified within the deadline,
  overdue, escalated, recurring with their long-term mechanisms, drills run and their stage
  results, inspection posture by check.

A hazard belongs to the period when it was first seen before the period's end and was still
live, or last seen, at or after its start. Drill hazards are counted apart from real ones.
No secret, key or evidence content beyond the record's own attributes appears in either.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from sentinel.core.model import Category, Severity
from sentinel.core.timefmt import iso
from sentinel.hazards import export
from sentinel.hazards.lifecycle import ACTIVE_STATES
from sentinel.hazards.records import HazardRecord
from sentinel.hub.model import HazardRow
from sentinel.hub.rows import parse_time
from sentinel.hub.schema import hazards
from sentinel.hub.store import HubStore

Format = Literal["markdown", "csv", "json"]
LIVE = ("open", "acknowledged", "rectifying", "resolved")
_ACTIVE = tuple(s.value for s in ACTIVE_STATES)


@dataclass(frozen=True, slots=True)
class Period:
    """[since, until) in Unix seconds, with a label for titles."""

    since: float
    until: float
    label: str

    @classmethod
    def year(cls, year: int) -> Period:
        """The calendar year in UTC."""
        start = datetime(year, 1, 1, tzinfo=UTC).timestamp()
        end = datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()
        return cls(start, end, str(year))

    @classmethod
    def between(cls, since: str, until: str) -> Period:
        """From two dates (YYYY-MM-DD, UTC; `until` exclusive)."""
        start = datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp()
        end = datetime.fromisoformat(until).replace(tzinfo=UTC).timestamp()
        if end <= start:
            raise ValueError("the period's end must come after its start")
        return cls(start, end, f"{since} – {until}")


def _in_period(period: Period) -> list[sa.ColumnElement[bool]]:
    return [
        hazards.c.first_seen < period.until,
        sa.or_(hazards.c.last_seen >= period.since, hazards.c.state.in_(LIVE)),
    ]


def _records(store: HubStore, unit_id: str | None, period: Period) -> list[tuple[HazardRow, dict[str, Any]]]:
    return sorted(
        store.iter_records(unit_id, _in_period(period)), key=lambda p: (p[0].terminal, p[0].local_id)
    )


def _for_export(row: HazardRow, record: dict[str, Any], now: float) -> dict[str, Any]:
    """The record as JSON, with the hub's view of it: overdue now, and where the terminal belongs."""
    out = dict(record)
    out.setdefault("id", row.local_id)
    out["overdue"] = bool(row.deadline is not None and row.state in _ACTIVE and now > row.deadline)
    out["terminal"] = row.terminal
    out["branch"] = row.branch_id
    out["primary_branch"] = row.primary_id
    return out


def _typed(record: dict[str, Any]) -> HazardRecord:
    return HazardRecord.from_json({**record, "history": []})


def export_ledger(store: HubStore, unit_id: str | None, period: Period, fmt: Format) -> str:
    """The fleet ledger of an org unit (None: the whole fleet) for a period."""
    now = store.clock.time()
    pairs = _records(store, unit_id, period)
    records = [_for_export(row, record, now) for row, record in pairs]
    unit = store.inventory.unit(unit_id) if unit_id else store.inventory.head_office
    unit_name = unit.name if unit else str(unit_id)
    unit_id_text = unit.id if unit else str(unit_id)
    if fmt == "json":
        trails = store.history_of([row.pk for row, _ in pairs])
        for (row, _), record in zip(pairs, records, strict=True):
            record["history"] = [
                {
                    "at": iso(h.at),
                    "action": h.action,
                    "from": h.from_state,
                    "to": h.to_state,
                    "actor": {"id": h.actor.id, "display": h.actor.display, "source": h.actor.source},
                    "note": h.note,
                    "seq": h.seq,
                }
                for h in trails[row.pk]
            ]
        return (
            json.dumps(
                {
                    "unit": {"id": unit_id_text, "name": unit_name},
                    "period": period.label,
                    "generated": iso(now),
                    "hazards": records,
                },
                indent=2,
                sort_keys=True,
                ensure_ascii=False,
            )
            + "\n"
        )
    if fmt == "csv":
        return _csv_with_places(export.to_csv([_typed(r) for r in records]), records)
    # markdown: the terminal's own ledger (sentinel.hazards.export), one section per terminal
    lines = [
        f"# Hazard rectification ledger — {_md(unit_name)} ({unit_id_text}), {period.label}",
        "",
        f"Generated {iso(now)}. {len(records)} hazard(s) on "
        f"{len({r['terminal'] for r in records})} terminal(s).",
    ]
    by_terminal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_terminal[record["terminal"]].append(record)
    for terminal, group in sorted(by_terminal.items()):
        body = export.to_markdown(
            [_typed(r) for r in group], terminal=terminal, branch=group[0]["branch"], generated=iso(now) or ""
        )
        lines += ["", "#" + body.replace("\n## ", "\n### ").rstrip()]
    return "\n".join(lines) + "\n"


def _csv_with_places(text: str, records: Sequence[dict[str, Any]]) -> str:
    """export.to_csv's rows with terminal, branch and primary branch in front."""
    rows = list(csv.reader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["terminal", "branch", "primary_branch", *rows[0]])
    for record, row in zip(records, rows[1:], strict=True):
        places = [record["terminal"], record["branch"], record["primary_branch"]]
        writer.writerow([export.neutralise(p) for p in places] + row)
    return out.getvalue()


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def inspection_report(
    store: HubStore,
    unit_id: str | None,
    period: Period,
    *,
    kind: Literal["year-end", "year-start"] = "year-end",
) -> dict[str, Any]:
    """The inspection report of an org unit as a JSON-ready dict (render with report_markdown)."""
    now = store.clock.time()
    inv = store.inventory
    unit = inv.unit(unit_id) if unit_id else inv.head_office
    if unit is None:
        raise ValueError(f"no org unit {unit_id!r}")
    pairs = _records(store, unit.id, period)
    real = [(r, rec) for r, rec in pairs if not r.drill]
    found = [
        (r, rec)
        for r, rec in real
        if r.first_seen is not None and period.since <= r.first_seen < period.until
    ]
    by_cat_sev: dict[str, dict[str, int]] = {c.value: {s.value: 0 for s in Severity} for c in Category}
    for r, _ in found:
        by_cat_sev.setdefault(r.category, {s.value: 0 for s in Severity})
        by_cat_sev[r.category][r.severity] = by_cat_sev[r.category].get(r.severity, 0) + 1
    end = min(now, period.until)
    rectified_in_time = rectified_late = 0
    for r, rec in found:
        resolved_at = _ts(rec.get("resolved_at")) or (r.closed_at if r.state == "closed" else None)
        if resolved_at is None or resolved_at >= period.until:
            continue
        if r.deadline is None or resolved_at <= r.deadline:
            rectified_in_time += 1
        else:
            rectified_late += 1
    overdue = [r for r, _ in real if r.state in _ACTIVE and r.deadline is not None and r.deadline < end]
    escalated = Counter(r.escalation_level for r, _ in real if r.escalation_level > 0)
    recurring = []
    for r, rec in real:
        if not r.recurring:
            continue
        mechanisms = [
            i for i in rec.get("rectification") or () if isinstance(i, dict) and i.get("kind") == "long_term"
        ]
        recurring.append(
            {
                "hazard": f"{r.terminal}/{r.local_id}",
                "rule": r.rule,
                "title": r.title,
                "state": r.state,
                "recurrences": r.recurrence_count,
                "long_term_mechanisms": [
                    {"text": i.get("text", ""), "done": bool(i.get("done")), "done_by": i.get("done_by")}
                    for i in mechanisms
                ],
            }
        )
    drills = store.drills(unit.id, since=period.since, until=period.until)
    by_scenario: dict[str, dict[str, Any]] = {}
    for d in drills:
        entry = by_scenario.setdefault(
            d["scenario"],
            {
                "scenario": d["scenario"],
                "runs": 0,
                "passed": 0,
                "failed": 0,
                "stages": defaultdict(lambda: [0, 0]),
            },
        )
        entry["runs"] += 1
        entry["passed" if d["passed"] else "failed"] += 1
        for stage in d["stages"]:
            if isinstance(stage, dict) and "stage" in stage:
                tally = entry["stages"][str(stage["stage"])]
                tally[0] += 1
                tally[1] += 1 if stage.get("passed") else 0
    drill_rows = [
        {
            **{k: v for k, v in e.items() if k != "stages"},
            "stages": [{"stage": s, "runs": n, "passed": p} for s, (n, p) in sorted(e["stages"].items())],
        }
        for e in sorted(by_scenario.values(), key=lambda e: e["scenario"])
    ]
    carried = [  # year-start: what the year begins with, still live from before it
        {
            "hazard": f"{r.terminal}/{r.local_id}",
            "severity": r.severity,
            "category": r.category,
            "title": r.title,
            "state": r.state,
            "deadline": iso(r.deadline),
            "overdue": r.deadline is not None and r.deadline < end,
        }
        for r, _ in real
        if kind == "year-start" and r.state in LIVE and (r.first_seen or 0) < period.since
    ]
    terminals = store.terminals(unit.id)
    return {
        "kind": kind,
        "unit": {
            "id": unit.id,
            "name": unit.name,
            "kind": unit.kind,
            "path": [u.name for u in inv.path(unit.id)],
        },
        "period": {
            "label": period.label,
            "since": iso(period.since),
            "until": iso(period.until),
        },
        "generated": iso(now),
        "terminals": {
            "total": len(terminals),
            "enrolled": sum(t.enrolled for t in terminals),
            "silent": sum(t.silent for t in terminals),
        },
        "found": {"total": len(found), "by_category_severity": by_cat_sev},
        "rectification": {
            "closed": sum(1 for r, _ in found if r.state == "closed"),
            "cancelled": sum(1 for r, _ in found if r.state == "cancelled"),
            "rectified_within_deadline": rectified_in_time,
            "rectified_late": rectified_late,
            "still_live": sum(1 for r, _ in found if r.state in LIVE),
        },
        "overdue": [
            {
                "hazard": f"{r.terminal}/{r.local_id}",
                "severity": r.severity,
                "title": r.title,
                "deadline": iso(r.deadline),
                "escalation_level": r.escalation_level,
            }
            for r in sorted(overdue, key=lambda r: r.deadline or 0)
        ],
        "escalated": {str(k): v for k, v in sorted(escalated.items())},
        "recurring": recurring,
        "drills": {
            "runs": len(drills),
            "scenarios": drill_rows,
            "drill_hazards": sum(1 for r, _ in pairs if r.drill),
        },
        "posture": store.posture(unit.id),
        "carried_over": carried,
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The inspection report as markdown."""
    title = "Year-end inspection report" if report["kind"] == "year-end" else "Year-start inspection report"
    unit = report["unit"]
    lines = [
        f"# {title} — {_md(unit['name'])} ({unit['id']}), {report['period']['label']}",
        "",
        f"{' › '.join(_md(p) for p in unit['path'])}. Generated {report['generated']}. "
        f"Terminals: {report['terminals']['total']} ({report['terminals']['enrolled']} enrolled, "
        f"{report['terminals']['silent']} silent).",
        "",
        f"## Hazards found: {report['found']['total']}",
        "",
        "| Category | " + " | ".join(s.value for s in Severity) + " | Total |",
        "|---|" + "---|" * (len(Severity) + 1),
    ]
    for category, counts in report["found"]["by_category_severity"].items():
        total = sum(counts.values())
        lines.append(
            f"| {category} | " + " | ".join(str(counts.get(s.value, 0)) for s in Severity) + f" | {total} |"
        )
    rect = report["rectification"]
    lines += [
        "",
        "## Rectification",
        "",
        f"- Rectified within the deadline: {rect['rectified_within_deadline']}",
        f"- Rectified late: {rect['rectified_late']}",
        f"- Closed (verified): {rect['closed']}; cancelled as false positives: {rect['cancelled']}",
        f"- Still live: {rect['still_live']}",
        "",
        f"## Overdue: {len(report['overdue'])}",
        "",
    ]
    lines += [
        f"- {o['hazard']} [{o['severity']}] {_md(o['title'])} — deadline {o['deadline']}, "
        f"escalation level {o['escalation_level']}"
        for o in report["overdue"]
    ] or ["- none"]
    lines += ["", "## Escalated", ""]
    lines += [f"- level {level}: {n}" for level, n in report["escalated"].items()] or ["- none"]
    lines += ["", "## Recurring hazards and their long-term mechanisms", ""]
    for r in report["recurring"]:
        lines.append(f"- {r['hazard']} {_md(r['title'])} ({r['state']}, {r['recurrences']} recurrence(s))")
        for m in r["long_term_mechanisms"]:
            lines.append(f"  - [{'x' if m['done'] else ' '}] {_md(m['text'])}")
    if not report["recurring"]:
        lines.append("- none")
    drills = report["drills"]
    lines += ["", f"## Drills: {drills['runs']} run(s)", ""]
    for s in drills["scenarios"]:
        stages = ", ".join(f"{st['stage']} {st['passed']}/{st['runs']}" for st in s["stages"]) or "no stages"
        lines.append(
            f"- {s['scenario']}: {s['runs']} run(s), {s['passed']} passed, {s['failed']} failed — {stages}"
        )
    if not drills["scenarios"]:
        lines.append("- none")
    lines += [
        "",
        "## Inspection posture by check",
        "",
        "| Check | Pass | Fail | Error | Skip |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {_md(p['check'])} | {p['pass']} | {p['fail']} | {p['error']} | {p['skip']} |"
        for p in report["posture"]
    ]
    if report["kind"] == "year-start":
        lines += ["", f"## Carried over into the year: {len(report['carried_over'])}", ""]
        lines += [
            f"- {c['hazard']} [{c['severity']}] {_md(c['title'])} — {c['state']}, deadline {c['deadline']}"
            + (" (overdue)" if c["overdue"] else "")
            for c in report["carried_over"]
        ] or ["- none"]
    return "\n".join(lines) + "\n"


def _ts(value: Any) -> float | None:
    return parse_time(value)
