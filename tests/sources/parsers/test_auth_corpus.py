"""The auth parser on public corpora (Wazuh's rule tests, fail2ban's filter tests, Elastic's
Filebeat tests, loghub) and on lines built from the programs' own format strings.

Goal (issue 17): in every category, at least 95 % of the lines that carry an authentication
fact give exactly the expected kinds, and no other line gives any event. Run this module as a
script to see the table (`python -m tests.sources.parsers.test_auth_corpus`)."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.sources.parsers.authparse import classify
from sentinel.sources.parsers.logrecord import Malformed, parse_journal_entry, parse_syslog_line

CORPUS = Path(__file__).parents[2] / "data" / "auth-corpus"
README = Path(__file__).parents[2] / "data" / "README.md"
NOW = time.mktime((2024, 12, 31, 12, 0, 0, 0, 0, -1))
GOAL = 0.95
PUBLIC = ("wazuh", "fail2ban", "beats", "loghub_openssh", "loghub_linux")


@dataclass(frozen=True)
class Case:
    """One corpus line: where it is, its category, the kinds it must give, the line."""

    source: str
    number: int
    category: str
    expected: tuple[str, ...]
    line: str


@dataclass
class Score:
    """Right-kind count over the fact lines and false events over the others, for a category."""

    facts: int = 0
    right: int = 0
    others: int = 0
    false_events: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.right / self.facts if self.facts else 1.0


def _expected(spec: str) -> tuple[str, ...]:
    if spec == "none":
        return ()
    kinds: list[str] = []
    for part in spec.split(","):
        kind, _, times = part.partition("*")
        kinds += [kind] * int(times or 1)
    return tuple(sorted(kinds))


def load(sources: tuple[str, ...] | None = None) -> list[Case]:
    """Every case of the corpus files (of `sources` only, when given)."""
    cases = []
    for path in sorted(CORPUS.glob("*.tsv")):
        if sources is not None and path.stem not in sources:
            continue
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip() or raw.startswith("#"):
                continue
            category, spec, line = raw.split("\t", 2)
            cases.append(Case(path.stem, number, category, _expected(spec), line))
    return cases


def kinds_of(case: Case) -> tuple[str, ...]:
    """What the parser makes of one case (no kinds when it is not a record at all)."""
    try:
        if case.category == "journal":
            record = parse_journal_entry(case.line, now=NOW)[0]
        else:
            record = parse_syslog_line(case.line, now=NOW)
    except Malformed:
        return ()
    return tuple(sorted(e.kind for e in classify(record)))


def score(cases: list[Case]) -> dict[str, Score]:
    """Per category: right kinds over the fact lines, false events over the rest."""
    scores: dict[str, Score] = defaultdict(Score)
    for case in cases:
        got = kinds_of(case)
        s = scores[case.category]
        if case.expected:
            s.facts += 1
            if got == case.expected:
                s.right += 1
            else:
                s.misses.append(f"{case.source}:{case.number} want {case.expected} got {got}: {case.line}")
        else:
            s.others += 1
            if got:
                s.false_events += 1
                s.misses.append(f"{case.source}:{case.number} want none got {got}: {case.line}")
    return dict(scores)


def report(scores: dict[str, Score]) -> str:
    """The recognised/total table."""
    rows = [f"{'category':10} {'right kind':>16} {'other lines':>12} {'false events':>13}"]
    total = Score()
    for category, s in sorted(scores.items()):
        rows.append(
            f"{category:10} {s.right:6}/{s.facts:<5} {100 * s.ratio:5.1f}% {s.others:12} {s.false_events:13}"
        )
        total.facts, total.right = total.facts + s.facts, total.right + s.right
        total.others, total.false_events = total.others + s.others, total.false_events + s.false_events
    rows.append(
        f"{'total':10} {total.right:6}/{total.facts:<5} {100 * total.ratio:5.1f}% "
        f"{total.others:12} {total.false_events:13}"
    )
    return "\n".join(rows)


def test_every_category_meets_the_goal() -> None:
    """In each category >= 95 % of the fact lines give exactly the expected kinds."""
    scores = score(load())
    table = report(scores)
    print(table)  # shown with -s / -rA: the recognised/total per category
    short = {c: s for c, s in scores.items() if s.ratio < GOAL}
    misses = [m for s in short.values() for m in s.misses[:10]]
    assert not short, table + "\n" + "\n".join(misses)


def test_no_line_without_a_fact_gives_an_event() -> None:
    """Session notes, negotiation errors, cron, kernel lines: no event at all."""
    scores = score(load())
    false = [m for s in scores.values() for m in s.misses if "want none" in m]
    assert not false, "\n".join(false[:20])


def test_the_public_lines_alone_meet_the_goal() -> None:
    """The goal holds on input we did not write (the synthesized lines only add forms)."""
    scores = score(load(PUBLIC))
    assert all(s.ratio >= GOAL and s.false_events == 0 for s in scores.values()), report(scores)
    assert sum(s.facts for s in scores.values()) >= 450


def test_every_corpus_file_names_its_source_and_licence() -> None:
    """Each file starts with where its lines came from; tests/data/README.md lists it."""
    readme = README.read_text(encoding="utf-8")
    for path in sorted(CORPUS.glob("*.tsv")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("#"), path.name
        assert path.name in readme, f"{path.name} missing from tests/data/README.md"


if __name__ == "__main__":  # pragma: no cover - a report for people
    all_cases = load()
    print("all corpus lines\n" + report(score(all_cases)))
    print("\npublic corpora only\n" + report(score(load(PUBLIC))))
    print("\nby source:", dict(Counter(c.source for c in all_cases)))
