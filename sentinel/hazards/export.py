"""The rectification ledger a branch hands to its safety committee: markdown, CSV or JSON.

It follows the hazard-ledger practice (register → rectify → verify → close): each hazard with
its measures, owner, deadline, who did each measure, what it cost (funding) and who re-inspected
it (the verifier), and who resolved and who verified and closed — by name and, when the typed
name says less, by identity (`alice2 (os:alice)`).

CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
carriage return) are prefixed with a quote, so a hostile file name cannot become a formula.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from sentinel.core.model import visible
from sentinel.hazards.identity import named
from sentinel.hazards.records import HazardRecord

COLUMNS = (
    "id",
    "severity",
    "category",
    "state",
    "title",
    "subject",
    "owner",
    "first_seen",
    "deadline",
    "overdue",
    "escalation_level",
    "measures",
    "measures_done",
    "resolved_by",
    "closed_by",
    "closed_at",
    "recurring",
    # added with identities (issue 20); the columns above keep their meaning and order
    "uid",
    "resolved_by_id",
    "closed_by_id",
    "escalated_to",
    "funding",
    "verified_by",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Defuse spreadsheet formula injection in one CSV cell."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _measures(record: HazardRecord) -> str:
    return "; ".join(
        f"[{'x' if i.done else ' '}] {i.text}" + (" (long-term)" if i.kind == "long_term" else "")
        for i in record.rectification
    )


def _row(record: HazardRecord) -> dict[str, str]:
    items = record.rectification
    return {
        "id": str(record.id),
        "severity": record.severity.value,
        "category": record.category.value,
        "state": record.state.value,
        "title": record.title,
        "subject": record.subject,
        "owner": record.owner,
        "first_seen": record.first_seen or "",
        "deadline": record.deadline or "",
        "overdue": "yes" if record.overdue else "no",
        "escalation_level": str(record.escalation_level),
        "measures": _measures(record),
        "measures_done": f"{sum(1 for i in items if i.done)}/{len(items)}",
        "resolved_by": record.resolved_by or "",
        "closed_by": record.closed_by or "",
        "closed_at": record.closed_at or "",
        "recurring": "yes" if any(i.kind == "long_term" for i in items) else "no",
        "uid": record.uid,
        "resolved_by_id": record.resolved_by_id or "",
        "closed_by_id": record.closed_by_id or "",
        "escalated_to": record.escalated_to,
        "funding": "; ".join(f"{i.item}: {i.funding}" for i in items if i.funding),
        "verified_by": "; ".join(
            sorted({named(i.verified_by, i.verified_by_id) for i in items if i.verified_by})
        ),
    }


def to_csv(records: Sequence[HazardRecord]) -> str:
    """One row per hazard, formula-safe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: neutralise(visible(v)) for k, v in _row(record).items()})
    return out.getvalue()


# JSON escapes C0 controls itself; DEL and the C1 range (U+009B is a one-character CSI) too
_C1 = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def to_json(records: Sequence[HazardRecord]) -> str:
    """The full records (non-ASCII text kept readable, every control character escaped)."""
    text = json.dumps([r.to_json() for r in records], indent=2, sort_keys=True, ensure_ascii=False)
    return text.translate(_C1)


def _md(text: str) -> str:
    """Escape what would break a markdown table cell, and every control character (`visible`):
    a ledger is read in terminals and editors that obey ESC and BEL."""
    return visible(text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " "))


def to_markdown(records: Sequence[HazardRecord], *, terminal: str, branch: str, generated: str) -> str:
    """A ledger table plus one section per hazard with its measures and closure."""
    lines = [
        f"# Hazard rectification ledger — terminal {_md(terminal)}, branch {_md(branch)}",
        "",
        f"Generated {generated}. {len(records)} hazard(s).",
        "",
        "| # | Level | Category | State | Hazard | Owner | Deadline | Overdue | Measures done "
        "| Verified by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        row = _row(r)
        lines.append(
            f"| {row['id']} | {row['severity']} | {row['category']} | {row['state']} | {_md(row['title'])} "
            f"| {_md(row['owner'])} | {row['deadline'] or '—'} | {row['overdue']} | {row['measures_done']} "
            f"| {_md(named(r.closed_by, r.closed_by_id)) or '—'} |"
        )
    for r in records:
        lines += ["", f"## #{r.id} {_md(r.title)}", ""]
        lines.append(
            f"- Rule `{r.rule}`, subject `{_md(r.subject)}`, first seen {r.first_seen}, "
            f"{r.occurrences} occurrence(s); uid `{r.uid}`"
        )
        lines.append(f"- Owner {_md(r.owner)}; escalation level {r.escalation_level} ({r.escalated_to})")
        if r.related:
            lines.append(f"- Recurs after: {', '.join(f'#{i}' for i in r.related)}")
        lines.append("- Measures:")
        for item in r.rectification:
            done = (
                f" — done by {_md(named(item.done_by, item.done_by_id))} at {item.done_at}"
                if item.done
                else ""
            )
            if item.funding:
                done += f"; funding: {_md(item.funding)}"
            if item.verified_by:
                done += (
                    f"; verified by {_md(named(item.verified_by, item.verified_by_id))} at {item.verified_at}"
                )
            kind = " (long-term mechanism)" if item.kind == "long_term" else ""
            lines.append(f"  - [{'x' if item.done else ' '}] {_md(item.text)}{kind}{done}")
        if not r.rectification:
            lines.append("  - (none listed by the rule)")
        if r.resolved_by:
            lines.append(f"- Resolved by {_md(named(r.resolved_by, r.resolved_by_id))} at {r.resolved_at}")
        if r.closed_by:
            lines.append(
                f"- Verified and closed by {_md(named(r.closed_by, r.closed_by_id))} at {r.closed_at}"
            )
    return "\n".join(lines) + "\n"
