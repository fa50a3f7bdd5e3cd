"""Drill results as metrics, read from the store at scrape time (served by sentinel.exposition)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sentinel.core.model import MetricSpec, Sample
from sentinel.hazards.store import HazardStore

METRICS = (
    MetricSpec(
        "sentinel_drill_last_success_timestamp_seconds",
        "gauge",
        "When the scenario's last passing drill finished.",
        ("scenario",),
    ),
    MetricSpec(
        "sentinel_drill_last_run_timestamp_seconds",
        "gauge",
        "When the scenario's last drill started.",
        ("scenario",),
    ),
    MetricSpec(
        "sentinel_drill_last_result", "gauge", "1 if the scenario's last drill passed.", ("scenario",)
    ),
    MetricSpec(
        "sentinel_drill_stage_latency_seconds",
        "gauge",
        "Latency of each stage of the scenario's last drill (stimulus to stage).",
        ("scenario", "stage"),
    ),
)


def drill_samples(store: HazardStore) -> Iterator[Sample]:
    """Per scenario: last success, last run, last result and the latency of each stage of the last run."""
    for row in store.drills.summary():
        scenario = str(row["scenario"])
        yield Sample.of(
            "sentinel_drill_last_run_timestamp_seconds", float(row["last_run"]), scenario=scenario
        )
        yield Sample.of("sentinel_drill_last_result", 1.0 if row["passed"] else 0.0, scenario=scenario)
        if row["last_success"] is not None:
            yield Sample.of(
                "sentinel_drill_last_success_timestamp_seconds", float(row["last_success"]), scenario=scenario
            )
        for stage in json.loads(row["stages"]):
            if stage.get("latency_seconds") is not None:
                # ticket stages name their sink: bounded by the config, not by input
                yield Sample.of(
                    "sentinel_drill_stage_latency_seconds",
                    float(stage["latency_seconds"]),
                    scenario=scenario,
                    stage=str(stage["name"]),
                )
