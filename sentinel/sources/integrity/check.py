"""One-shot baseline operations shared by `sentinel baseline ...` and inspections.

`check()` compares the trees with the signed baseline (AIDE's `--check`: every difference since
the baseline, whether or not the agent already reported it). `take()` scans for a new baseline.
(A baseline that fails verification is raised as a hazard by the composition root,
sentinel.agent.wiring.raise_tamper_hazard, through the configured rules as the agent would.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.sources.integrity.baseline import Baseline, BaselineError, BaselineFiles
from sentinel.sources.integrity.changes import Change, compare
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.sources.integrity.scanner import Scanner, ScanStats
from sentinel.sources.integrity.table import EntryTable


@dataclass
class CheckResult:
    """What `check` found."""

    baseline: Baseline | None
    problem: str = ""  # why the baseline cannot be trusted ("" when it verifies)
    detail: str = ""
    changes: list[Change] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    current: EntryTable | None = None  # what the trees hold now (None when nothing was scanned)

    @property
    def ok(self) -> bool:
        """A valid baseline and no change."""
        return not self.problem and not self.changes

    def by_kind(self) -> dict[str, list[Change]]:
        """Changes grouped by kind, kinds in a fixed order."""
        order = ("created", "deleted", "modified", "replaced", "truncated", "renamed", "attributes")
        grouped: dict[str, list[Change]] = {}
        for kind in order:
            items = sorted((c for c in self.changes if c.kind == kind), key=lambda c: c.path)
            if items:
                grouped[kind] = items
        return grouped

    def counts(self) -> dict[str, int]:
        """Number of changes per kind."""
        return dict(Counter(c.kind for c in self.changes))


def scanner_for(config: IntegrityConfig, state_dir: Path, *, throttled: bool = False) -> Scanner:
    """A scanner over the watch entries (the agent's state directory left out)."""
    return Scanner.for_config(config, excluded=[state_dir], throttled=throttled)


def take(config: IntegrityConfig, state_dir: Path) -> tuple[Baseline, ScanStats]:
    """Scan (and hash) everything into a new, unsigned, unwritten baseline."""
    stats = ScanStats()
    entries = scanner_for(config, state_dir).scan(deep=True, stats=stats)
    return baseline_of(config, entries), stats


def baseline_of(config: IntegrityConfig, entries: EntryTable) -> Baseline:
    """A new baseline of `entries` for the watch entries, taken now."""
    return Baseline(entries, SYSTEM_CLOCK.time(), roots=[(str(w.path), w.policy) for w in config.watch])


def check(
    config: IntegrityConfig,
    state_dir: Path,
    *,
    deep: bool = False,
    baseline: Baseline | None = None,
    throttled: bool = False,
) -> CheckResult:
    """Verify the baseline (unless given one already verified) and compare the trees with it
    (quick mode trusts unchanged stats). `throttled`: paced like the agent's own scans."""
    if baseline is None:
        try:
            baseline = BaselineFiles(state_dir).load("baseline")
        except BaselineError as exc:
            return CheckResult(None, exc.problem, str(exc))
    scanner = scanner_for(config, state_dir, throttled=throttled)
    reference = baseline.present()
    stats = ScanStats()
    current = scanner.scan(reference=reference, deep=deep, stats=stats)
    watched = {r for r, _ in baseline.roots}
    fresh = tuple(str(w.path) for w in config.watch if str(w.path) not in watched)

    def in_scope(path: str) -> bool:
        return scanner.watchset.resolve(path) is not None

    def outside_baseline(path: str) -> bool:  # roots added to the config since: not changes
        return path not in reference and any(scanner.watchset.within(path, r) for r in fresh)

    changes = compare(scanner.watchset, reference, current, in_scope, outside_baseline)
    return CheckResult(baseline, changes=changes, stats=stats, current=current)


def summary(config: IntegrityConfig, state_dir: Path) -> dict[str, object] | None:
    """For inspections: {"ok", "summary"}; None when nothing is watched."""
    if not config.enabled or not config.watch:
        return None
    result = check(config, state_dir, throttled=True)  # inside the agent: paced like its own scans
    if result.problem:
        return {"ok": False, "summary": f"baseline invalid: {result.detail}"}
    if not result.changes:
        return {"ok": True, "summary": f"{result.stats.entries} paths unchanged since the baseline"}
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    return {"ok": False, "summary": f"{len(result.changes)} changes since the baseline ({counts})"}
