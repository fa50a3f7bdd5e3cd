"""Rendering an inspection report as markdown (for the safety committee) or plain text."""

from __future__ import annotations

from sentinel.inspect.runner import Report

_MARK = {"pass": "PASS", "fail": "FAIL", "skip": "skip", "error": "ERROR"}


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    """The full report, failed checks first with what to fix."""
    data = report.as_dict()
    s = data["summary"]
    lines = [
        f"# Inspection report — terminal {_md(report.terminal)}, branch {_md(report.branch)}",
        "",
        f"Run {data['started_at']}. Posture checks: {s['pass']} passed, {s['fail']} failed, "
        f"{s['error']} could not run, {s['skip']} not applicable. "
        + ("**Problems found.**" if report.problems else "No problems found."),
        "",
    ]
    if report.load_errors:
        lines += ["## Configuration problems", "", *[f"- {_md(e)}" for e in report.load_errors], ""]
    lines += ["## Posture checks", "", "| Result | Check | Severity | Detail |", "|---|---|---|---|"]
    order = {"fail": 0, "error": 1, "pass": 2, "skip": 3}
    for c in sorted(report.checks, key=lambda c: (order[c.outcome], c.id)):
        lines.append(
            f"| {_MARK[c.outcome]} | {_md(c.title)} (`{c.id}`) | {c.severity.value} | {_md(c.detail)} |"
        )
    failed = report.failed
    if failed:
        lines += ["", "### What to fix", ""]
        lines += [f"- **{_md(c.title)}** — {_md(c.remediation)}" for c in failed]
    lines += ["", "## Health snapshot (against the threshold rules)", ""]
    if report.health:
        lines += ["| Rule | Subject | Value | Verdict |", "|---|---|---|---|"]
        for h in report.health:
            lines.append(f"| {h.rule} | {_md(h.subject)} | {h.value:.4g} | {h.verdict} |")
    else:
        lines.append("No threshold rule applies to the current readings.")
    lines += ["", "## File integrity baseline", ""]
    if report.baseline is None:
        lines.append("Not checked (no baseline configured).")
    else:
        verdict = "unchanged" if report.baseline.get("ok") else "**changed or invalid**"
        lines.append(f"Baseline {verdict}: {_md(str(report.baseline.get('summary', '')))}")
    lines += ["", "## Hazards", ""]
    hz = report.hazards
    if hz:
        lines.append(f"Open: {hz.get('open', 0)}; overdue: {hz.get('overdue', 0)}.")
        if "trail" in hz:
            mark = "verified" if hz["trail"].get("ok") else "**altered**"
            lines.append(f"Audit trail {mark}: {_md(str(hz['trail'].get('summary', '')))}.")
        for item in hz.get("items", []):
            late = " (overdue)" if item.get("overdue") else ""
            lines.append(
                f"- #{item['id']} {item['severity']} — {_md(item['title'])} — owner "
                f"{_md(item['owner'])}, deadline {item.get('deadline') or 'none'}{late}"
            )
    else:
        lines.append("No hazard store yet.")
    return "\n".join(lines) + "\n"


def to_text(report: Report) -> str:
    """A terminal-friendly summary."""
    out = []
    for c in sorted(report.checks, key=lambda c: c.id):
        out.append(f"[{_MARK[c.outcome]:>5}] {c.id}: {c.title} — {c.detail}")
        if c.outcome in ("fail", "error"):
            out.append(f"        fix: {c.remediation}")
    for h in report.health:
        if h.verdict != "ok":
            out.append(f"[{h.verdict.upper():>5}] health {h.rule} on {h.subject}: {h.value:.4g}")
    for e in report.load_errors:
        out.append(f"[ERROR] {e}")
    if report.baseline is not None:
        mark = "PASS" if report.baseline.get("ok") else "FAIL"
        out.append(f"[{mark:>5}] baseline: {report.baseline.get('summary')}")
    hz = report.hazards
    if hz:
        out.append(f"hazards: {hz.get('open', 0)} open, {hz.get('overdue', 0)} overdue")
        if "trail" in hz:
            mark = "PASS" if hz["trail"].get("ok") else "FAIL"
            out.append(f"[{mark:>5}] audit trail: {hz['trail'].get('summary')}")
    out.append("problems found" if report.problems else "no problems found")
    return "\n".join(out) + "\n"
