"""Drill results as metrics, read from the store at scrape time."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from sentinel.hazards.store import HazardStore


def drill_families(store: HazardStore) -> Iterator[Metric]:
    """sentinel_drill_last_success_timestamp_seconds, _last_run_timestamp_seconds,
    _last_result and _stage_latency_seconds (of the last run) per scenario."""
    success = GaugeMetricFamily(
        "sentinel_drill_last_success_timestamp_seconds",
        "When the scenario's last passing drill finished.",
        labels=["scenario"],
    )
    last_run = GaugeMetricFamily(
        "sentinel_drill_last_run_timestamp_seconds",
        "When the scenario's last drill started.",
        labels=["scenario"],
    )
    result = GaugeMetricFamily(
        "sentinel_drill_last_result", "1 if the scenario's last drill passed.", labels=["scenario"]
    )
    latency = GaugeMetricFamily(
        "sentinel_drill_stage_latency_seconds",
        "Latency of each stage of the scenario's last drill (stimulus to stage).",
        labels=["scenario", "stage"],
    )
    for row in store.drill_summary():
        scenario = str(row["scenario"])
        last_run.add_metric([scenario], float(row["last_run"]))
        result.add_metric([scenario], 1.0 if row["passed"] else 0.0)
        if row["last_success"] is not None:
            success.add_metric([scenario], float(row["last_success"]))
        for stage in json.loads(row["stages"]):
            if stage.get("latency_seconds") is not None:
                # ticket stages name their sink: bounded by the config, not by input
                latency.add_metric([scenario, str(stage["name"])], float(stage["latency_seconds"]))
    yield from (success, last_run, result, latency)
