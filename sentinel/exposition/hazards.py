"""The hazard store at scrape time: records by state, overdue, raised, the open ones listed, and
the head of the hash-chained trail (one series: what a central Prometheus keeps to prove later
what this terminal's trail was)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator

import structlog

from sentinel.core.model import Category, MetricSpec, Sample, Severity, freeze_labels
from sentinel.exposition.families import SpecCollector
from sentinel.hazards.lifecycle import State
from sentinel.hazards.store import HazardStore

log = structlog.get_logger("sentinel.metrics")


def specs(open_info_limit: int) -> tuple[MetricSpec, ...]:
    """The hazard families (the info series' help names its cap)."""
    return (
        MetricSpec(
            "sentinel_hazards",
            "gauge",
            "Hazard records by state, severity and category.",
            ("state", "severity", "category"),
        ),
        MetricSpec("sentinel_hazards_overdue", "gauge", "Active hazards past their deadline.", ("severity",)),
        MetricSpec(
            "sentinel_hazards_raised",
            "counter",
            "Hazards raised (or escalated in severity).",
            ("category", "severity"),
        ),
        MetricSpec(
            "sentinel_hazard_open_info",
            "gauge",
            f"One series per active hazard (the {open_info_limit} most severe), for listing.",
            ("hazard_id", "rule", "severity", "category", "state", "drill"),
        ),
        MetricSpec(
            "sentinel_audit_chain_head_info",
            "gauge",
            "The newest link of the hazard store's hash-chained trail (one series; hash: its sha256 in hex).",
            ("store_id", "hash"),
        ),
        MetricSpec(
            "sentinel_audit_chain_rows", "gauge", "Links in the trail's hash chain (the head's row number)."
        ),
    )


def hazard_collector(store: HazardStore, *, open_info_limit: int = 50) -> SpecCollector:
    """The hazard families, read from `store` (its own connection: scrapes never wait on the writer)."""
    lock = threading.Lock()  # the four reads of one scrape together
    # every (state, severity, category) with its labels, made once: zeros are exported too
    every_kind = [
        (
            (state.value, severity.value, category.value),
            freeze_labels({"state": state.value, "severity": severity.value, "category": category.value}),
        )
        for state in State
        for severity in Severity
        for category in Category
    ]

    def samples() -> Iterator[Sample]:
        try:
            with lock:
                counts = store.state_counts()
                overdue = store.overdue_counts()
                raised = store.counter("hazards_raised_total")
                open_rows = store.open_hazards(open_info_limit)
                head_seq, head_hash = store.chain_head()
        except sqlite3.Error as exc:
            log.error("metrics_store_read_failed", error=str(exc))
            return
        table = {(s, v, c): n for s, v, c, n in counts}
        for key, labels in every_kind:
            yield Sample("sentinel_hazards", float(table.get(key, 0)), labels)
        for severity in Severity:
            yield Sample.of(
                "sentinel_hazards_overdue", overdue.get(severity.value, 0), severity=severity.value
            )
        by_kind = {(lab.get("category", ""), lab.get("severity", "")): value for lab, value in raised}
        for category in Category:  # zeros included: increase() needs the series before the first hazard
            for severity in Severity:
                raised_n = by_kind.get((category.value, severity.value), 0.0)
                yield Sample.of(
                    "sentinel_hazards_raised", raised_n, category=category.value, severity=severity.value
                )
        for row in open_rows:
            yield Sample.of(
                "sentinel_hazard_open_info",
                1,
                hazard_id=str(row["id"]),
                rule=row["rule"],
                severity=row["severity"],
                category=row["category"],
                state=row["state"],
                drill="true" if row["drill"] else "false",
            )
        yield Sample.of("sentinel_audit_chain_head_info", 1, store_id=store.store_id, hash=head_hash)
        yield Sample.of("sentinel_audit_chain_rows", head_seq)

    return SpecCollector.fixed("hazards", specs(open_info_limit), samples)
