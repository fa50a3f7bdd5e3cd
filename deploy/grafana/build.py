"""Writes the two provisioned dashboards. Edit the panel lists here, run `python deploy/grafana/build.py`.

Every query selects `job="$job"` and the branch/instance variables, and every panel uses the
`datasource` template variable (never `${DS_...}` inputs, which only work in UI import).
"""

# ruff: noqa: E501 - panel queries and descriptions read best on one line each

from __future__ import annotations

import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job="$job",branch=~"$branch"'
ACTIVE = 'state=~"open|acknowledged|rectifying"'


RULES = HERE.parents[1] / "config" / "rules.d"


def rule_levels(name: str) -> dict[str, float]:
    """The shipped rule's levels by severity (config/rules.d): the boards show what raises hazards."""
    for path in sorted(RULES.glob("*.toml")):
        for rule in tomllib.loads(path.read_text()).get("rules", []):
            if rule["name"] == name:
                if "levels" in rule:
                    return dict(rule["levels"])
                return {rule["severity"]: rule["threshold"]}
    raise KeyError(name)


COLOURS = {"info": "blue", "minor": "yellow", "major": "orange", "critical": "red"}


def steps_from(rule: str, *, below: bool = False) -> list[tuple[float | None, str]]:
    """Threshold steps from a rule's levels: green, then each severity's colour at its level
    (for a "below" rule the colours run the other way: red at the bottom)."""
    levels = sorted(rule_levels(rule).items(), key=lambda kv: kv[1])
    if below:
        steps: list[tuple[float | None, str]] = [(None, COLOURS[levels[0][0]])]
        steps += [(level, COLOURS[after[0]]) for (_, level), after in itertools.pairwise(levels)]
        steps.append((levels[-1][1], "green"))
        return steps
    return [(None, "green"), *((level, COLOURS[sev]) for sev, level in levels)]


def state_mapping(zero: str, one: str, *, zero_colour: str = "red") -> list[dict[str, Any]]:
    """A 0/1 gauge read as words with colours (never a bare 0/1)."""
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": zero, "color": zero_colour, "index": 0},
                "1": {"text": one, "color": "green", "index": 1},
            },
        }
    ]


TERMINAL_LINK = {
    "title": "Open terminal ${__field.labels.instance}",
    "url": "/d/sentinel-terminal/sentinel-terminal?var-job=${job}&var-branch=${__field.labels.branch}"
    "&var-instance=${__field.labels.instance}&${__url_time_range}",
}
"""Fleet -> terminal: a data link on every per-terminal fleet panel."""


def variables(with_instance: bool) -> dict[str, Any]:
    def query(name: str, expr: str, multi: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": DS,
            "query": {"query": expr, "refId": name},
            "refresh": 2,
            "includeAll": multi,
            "multi": multi,
            "allValue": ".*",
            "current": {},
            "sort": 1,
        }

    out = [
        {
            "name": "datasource",
            "type": "datasource",
            "query": "prometheus",
            "label": "Data source",
            "current": {},
        },
        query("job", "label_values(sentinel_up, job)", multi=False),
        query("branch", 'label_values(sentinel_up{job="$job"}, branch)'),
    ]
    if with_instance:
        out.append(
            query("instance", 'label_values(sentinel_up{job="$job",branch=~"$branch"}, instance)', False)
        )
    return {"list": out}


def panel(
    pid: int,
    title: str,
    kind: str,
    exprs: list[tuple[str, str]],
    x: int,
    y: int,
    w: int,
    h: int,
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    links: list[dict[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"value": v, "color": c} for v, c in thresholds],
        }
        if kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
        else:
            defaults["color"] = {"mode": "thresholds"}
    if mappings:
        defaults["mappings"] = mappings
    if links:
        defaults["links"] = links
    return {
        "id": pid,
        "title": title,
        "type": kind,
        "datasource": DS,
        "description": description,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {
                "refId": chr(65 + i),
                "expr": e,
                "legendFormat": legend,
                "datasource": DS,
                **({"format": "table", "instant": True} if kind == "table" else {}),
            }
            for i, (e, legend) in enumerate(exprs)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {},
        **extra,
    }


def fleet() -> dict[str, Any]:
    p = [
        panel(
            1,
            "Terminals up",
            "stat",
            [(f"sum(up{{{SEL}}})", "up")],
            0,
            0,
            4,
            4,
            description="Terminals answering the scrape. Red when any is down: see 'Terminals down'.",
        ),
        panel(
            2,
            "Terminals down",
            "stat",
            [(f"count(up{{{SEL}}} == 0) or vector(0)", "down")],
            4,
            0,
            4,
            4,
            description="Unscrapable terminals: check power, network, `systemctl status sentinel`.",
        ),
        panel(
            3,
            "Critical hazards open",
            "stat",
            [(f'sum(sentinel_hazards{{{SEL},severity="critical",{ACTIVE}}})', "critical")],
            8,
            0,
            4,
            4,
            description="Open critical hazards. Non-zero: act now, see the terminal drill-down.",
        ),
        panel(
            4,
            "Overdue hazards",
            "stat",
            [(f"sum(sentinel_hazards_overdue{{{SEL}}})", "overdue")],
            12,
            0,
            4,
            4,
            description="Hazards past their rectification deadline; they are escalating up the chain.",
        ),
        panel(
            5,
            "Tickets waiting",
            "stat",
            [(f"sum(sentinel_tickets_pending{{{SEL}}})", "pending")],
            16,
            0,
            4,
            4,
            description="Tickets not yet delivered. Growing: the ticketing system or network is down.",
        ),
        panel(
            6,
            "Oldest waiting ticket",
            "stat",
            [(f"max(sentinel_ticket_oldest_pending_seconds{{{SEL}}})", "oldest")],
            20,
            0,
            4,
            4,
            unit="s",
            description="Oldest undelivered ticket; over 30 min raises SentinelTicketsPendingTooLong.",
        ),
        panel(
            7,
            "Active hazards by branch and severity",
            "barchart",
            [(f"sum by (branch, severity) (sentinel_hazards{{{SEL},{ACTIVE}}})", "{{branch}} {{severity}}")],
            0,
            4,
            12,
            8,
            description="Where the open work is. A branch with many major/critical needs help.",
        ),
        panel(
            8,
            "Active hazards by category",
            "piechart",
            [(f"sum by (category) (sentinel_hazards{{{SEL},{ACTIVE}}})", "{{category}}")],
            12,
            4,
            6,
            8,
            description="Which risk dominates: equipment, cyber attack, data security, IT change, stability.",
        ),
        panel(
            9,
            "Hazards raised per hour",
            "timeseries",
            [(f"sum by (category) (increase(sentinel_hazards_raised_total{{{SEL}}}[1h]))", "{{category}}")],
            18,
            4,
            6,
            8,
            description="A jump in one category across branches suggests a campaign or a bad rollout.",
        ),
        panel(
            10,
            "Tickets waiting by sink",
            "timeseries",
            [(f"sum by (branch, sink) (sentinel_tickets_pending{{{SEL}}})", "{{branch}} {{sink}}")],
            0,
            12,
            12,
            7,
            description="Per sink: a rising line is a receiver that stopped accepting tickets.",
        ),
        panel(
            11,
            "Days since the last passing drill",
            "table",
            [(f"(time() - sentinel_drill_last_success_timestamp_seconds{{{SEL}}}) / 86400", "")],
            12,
            12,
            12,
            7,
            unit="d",
            description="Over 35 days raises SentinelNoDrillPassed: run `sentinel drill` on that terminal.",
            thresholds=[(None, "green"), (30, "orange"), (35, "red")],
            links=[TERMINAL_LINK],
        ),
        panel(
            12,
            "Collectors down",
            "table",
            [(f"sentinel_collector_up{{{SEL}}} == 0", "")],
            0,
            19,
            12,
            7,
            description="Failing or disabled collectors: `sentinel status` shows the last error.",
            links=[TERMINAL_LINK],
        ),
        panel(
            13,
            "Events per hour by detector",
            "timeseries",
            [
                (
                    f"sum by (detector, kind) (increase(sentinel_events_total{{{SEL}}}[1h]))",
                    "{{detector}} {{kind}}",
                )
            ],
            12,
            19,
            12,
            7,
            description="Suspicious-event volume; a new kind across many terminals deserves a look.",
        ),
    ]
    p += [
        panel(
            14,
            "Drills failed by branch",
            "barchart",
            [
                (
                    f"count by (branch) (sentinel_drill_last_result{{{SEL}}} == 0) or sum by (branch) (sentinel_up{{{SEL}}}) * 0",
                    "{{branch}}",
                )
            ],
            0,
            26,
            12,
            7,
            description="Terminals whose last drill of a scenario failed, per branch: the chain is broken there.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        panel(
            15,
            "Blind detectors",
            "table",
            [(f"sentinel_detector_up{{{SEL}}} == 0", "")],
            12,
            26,
            12,
            7,
            description="Detectors that cannot read their source (no log, no privilege): that terminal is blind there.",
            links=[TERMINAL_LINK],
        ),
        panel(
            16,
            "Terminals with stalled collectors",
            "table",
            [(f"time() - sentinel_collector_last_run_timestamp_seconds{{{SEL}}} > 600", "")],
            0,
            33,
            12,
            7,
            unit="s",
            description="A collector that has not finished a run for 10 min (SentinelCollectorStalled).",
            links=[TERMINAL_LINK],
        ),
        panel(
            17,
            "Baselines invalid",
            "stat",
            [(f"count(sentinel_fim_baseline_valid{{{SEL}}} == 0) or vector(0)", "invalid")],
            12,
            33,
            6,
            7,
            description="Terminals whose integrity baseline is missing, unsigned or tampered with (critical).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        panel(
            19,
            "Ticket deliveries per hour",
            "timeseries",
            [
                (
                    f"sum by (sink, outcome) (increase(sentinel_ticket_deliveries_total{{{SEL}}}[1h]))",
                    "{{sink}} {{outcome}}",
                ),
                (f"sum by (sink) (sentinel_tickets_dead{{{SEL}}})", "{{sink}} dead-lettered"),
            ],
            0,
            40,
            24,
            7,
            description="Retries are normal during an outage; dead-lettered tickets need `sentinel tickets retry`.",
        ),
        panel(
            18,
            "Hazards by terminal",
            "table",
            [(f"sum by (branch, instance, terminal) (sentinel_hazards{{{SEL},{ACTIVE}}}) > 0", "")],
            18,
            33,
            6,
            7,
            description="Active hazards per terminal; the link opens that terminal's board.",
            links=[TERMINAL_LINK],
        ),
    ]
    p += it_change_fleet(first_id=len(p) + 1, y=bottom(p))
    return board("sentinel-fleet", "Sentinel — fleet overview", p, with_instance=False)


def it_change_fleet(*, first_id: int, y: int) -> list[dict[str, Any]]:
    """IT change across the fleet (docs/change.md): package operations per branch and terminal,
    changes outside a window, inventory drift, missing peripherals."""
    outside = 'rule="package_change_outside_window"'
    return [
        panel(
            first_id,
            "IT changes per branch",
            "timeseries",
            [(f"sum by (branch) (increase(sentinel_package_operations_total{{{SEL}}}[1d]))", "{{branch}}")],
            0,
            y,
            12,
            7,
            description="Package operations per day (one it_change record each). A branch patching "
            "off its schedule: see 'Changes outside an approved window'.",
        ),
        panel(
            first_id + 1,
            "IT changes per terminal (last day)",
            "table",
            [
                (
                    "sum by (branch, instance) "
                    f"(increase(sentinel_package_operations_total{{{SEL}}}[1d])) > 0",
                    "",
                )
            ],
            12,
            y,
            12,
            7,
            description="Terminals with package operations in the last day; `sentinel inventory` on the "
            "terminal lists them.",
        ),
        panel(
            first_id + 2,
            "Changes outside an approved window",
            "table",
            [(f"count by (branch, instance) (sentinel_hazard_open_info{{{SEL},{outside}}})", "")],
            0,
            y + 7,
            8,
            7,
            description="Open 'change outside an approved window' records (major): confirm the change "
            "with its owner, or open a window first next time (`sentinel change open`).",
        ),
        panel(
            first_id + 3,
            "Software inventory drift",
            "table",
            [(f"count by (branch, digest) (sentinel_inventory_info{{{SEL}}})", "")],
            8,
            y + 7,
            8,
            7,
            description="Terminals per inventory digest in each branch: more than one digest in a "
            "branch is a terminal on other package versions.",
        ),
        panel(
            first_id + 4,
            "Peripherals missing",
            "table",
            [(f"sentinel_peripherals_missing{{{SEL}}} > 0", "")],
            16,
            y + 7,
            8,
            7,
            description="Terminals missing a required card reader, PIN pad, printer … or with another "
            "device on its port: check the equipment on site.",
        ),
    ]


def terminal() -> dict[str, Any]:
    s = f'{SEL},instance=~"$instance"'
    p = [
        panel(
            1,
            "CPU busy",
            "timeseries",
            [(f"sentinel_cpu_utilisation_ratio{{{s}}}", "cpu")],
            0,
            0,
            8,
            7,
            unit="percentunit",
            description="Sustained high CPU slows the teller application; check top processes.",
            thresholds=steps_from("cpu_sustained_high"),
        ),
        panel(
            2,
            "Memory used",
            "timeseries",
            [(f"sentinel_memory_used_ratio{{{s}}}", "memory"), (f"sentinel_swap_used_ratio{{{s}}}", "swap")],
            8,
            0,
            8,
            7,
            unit="percentunit",
            description="Over 90 % for 15 min raises memory_high; restart the leaking application off-hours.",
            thresholds=steps_from("memory_high"),
        ),
        panel(
            3,
            "Load per core",
            "timeseries",
            [(f"sentinel_load_per_core{{{s}}}", "load/core")],
            16,
            0,
            8,
            7,
            description="Above 2 for 15 min: more work than the CPUs can do.",
            thresholds=steps_from("load_per_core_high"),
        ),
        panel(
            4,
            "Filesystem used",
            "timeseries",
            [(f"sentinel_filesystem_used_ratio{{{s}}}", "{{mountpoint}} ({{device}})")],
            0,
            7,
            12,
            7,
            unit="percentunit",
            description="90 % major, 97 % critical; free space before the application fails to write.",
            thresholds=steps_from("filesystem_space_low"),
        ),
        panel(
            5,
            "Temperatures",
            "timeseries",
            [(f"sentinel_temperature_celsius{{{s}}}", "{{sensor}}")],
            12,
            7,
            12,
            7,
            unit="celsius",
            description="Near the chip's own high mark: check fans and dust (no series in VMs).",
        ),
        panel(
            6,
            "Network links",
            "state-timeline",
            [(f"sentinel_network_up{{{s}}}", "{{device}}")],
            0,
            14,
            12,
            6,
            description="A link down cuts the terminal off; check the cable and switch port.",
            mappings=state_mapping("down", "up"),
        ),
        panel(
            7,
            "File integrity changes per hour",
            "timeseries",
            [
                (
                    f"sum by (kind, policy) (increase(sentinel_fim_changes_total{{{s}}}[1h]))",
                    "{{policy}} {{kind}}",
                )
            ],
            12,
            14,
            12,
            6,
            description="Changes to watched files; a package operation's own files fold into its record "
            "(the IT change panels).",
        ),
        panel(
            8,
            "Files watched",
            "stat",
            [(f"sentinel_fim_watched_files{{{s}}}", "watched")],
            0,
            20,
            4,
            4,
            description="Files under integrity watch. A drop means paths vanished or watches ran out.",
        ),
        panel(
            9,
            "Baseline valid",
            "stat",
            [(f"sentinel_fim_baseline_valid{{{s}}}", "valid")],
            4,
            20,
            4,
            4,
            description="0: the baseline is missing, unsigned or tampered with — a critical hazard.",
            mappings=state_mapping("INVALID", "valid"),
            thresholds=[(None, "red"), (1, "green")],
        ),
        panel(
            10,
            "Suspicious events per hour",
            "timeseries",
            [
                (
                    f"sum by (detector, kind) (increase(sentinel_events_total{{{s}}}[1h]))",
                    "{{detector}} {{kind}}",
                )
            ],
            8,
            20,
            16,
            6,
            description="Logins, USB, listeners, processes, outbound, accounts; bursts become hazards.",
        ),
        panel(
            11,
            "Open hazards",
            "table",
            [(f"sentinel_hazard_open_info{{{s}}}", "")],
            0,
            26,
            24,
            8,
            description="Active hazards, worst first; `sentinel hazards show ID` for the record.",
        ),
        panel(
            12,
            "Collectors",
            "table",
            [(f"sentinel_collector_duration_seconds{{{s}}}", "")],
            0,
            34,
            24,
            6,
            unit="s",
            description="Each collector's last run duration; a slow one is a stuck mount or sensor.",
        ),
    ]
    p += terminal_more(s, first_id=len(p) + 1, y=40)
    p += it_change_terminal(s, first_id=len(p) + 1, y=bottom(p))
    return board("sentinel-terminal", "Sentinel — terminal", p, with_instance=True)


def bottom(panels: list[dict[str, Any]]) -> int:
    """The first free row below `panels` (where the next group of panels starts)."""
    return max(q["gridPos"]["y"] + q["gridPos"]["h"] for q in panels)


def it_change_terminal(s: str, *, first_id: int, y: int) -> list[dict[str, Any]]:
    """One terminal's software and peripheral inventory and its package changes."""
    return [
        panel(
            first_id,
            "Packages changed per day by action",
            "timeseries",
            [(f"sum by (action) (increase(sentinel_package_changes_total{{{s}}}[1d]))", "{{action}}")],
            0,
            y,
            12,
            7,
            description="Installs, upgrades, downgrades, reinstalls, removals from recorded operations; "
            "each operation is one it_change record (`sentinel hazards list`).",
        ),
        panel(
            first_id + 1,
            "Installed packages",
            "stat",
            [(f"sentinel_packages_installed{{{s}}}", "installed")],
            12,
            y,
            4,
            4,
            description="Packages in the dpkg database. A jump without a change record: check the inventory.",
        ),
        panel(
            first_id + 2,
            "Last software change",
            "stat",
            [(f"sentinel_package_last_change_timestamp_seconds{{{s}}} * 1000 > 0", "ended")],
            16,
            y,
            4,
            4,
            unit="dateTimeFromNow",
            description="When the last package operation ended (empty: none since the inventory was taken).",
        ),
        panel(
            first_id + 3,
            "Change window open",
            "stat",
            [(f"sentinel_change_window_open{{{s}}}", "open")],
            20,
            y,
            4,
            4,
            description="1 while an approved window is open: package changes now are info, outside a "
            "window they are major.",
        ),
        panel(
            first_id + 4,
            "Peripherals missing",
            "stat",
            [
                (f"sentinel_peripherals_missing{{{s}}}", "missing"),
                (f"sentinel_peripherals_required{{{s}}}", "required"),
            ],
            12,
            y + 4,
            6,
            3,
            description="Required devices absent or replaced (critical for card readers and PIN pads).",
        ),
        panel(
            first_id + 5,
            "File changes folded into package operations",
            "timeseries",
            [
                (f"increase(sentinel_fim_attributed_total{{{s}}}[1h])", "attributed"),
                (f"sentinel_fim_held_paths{{{s}}}", "held"),
            ],
            18,
            y + 4,
            6,
            3,
            description="Attributed: package files that raised nothing of their own. Held: changes "
            "waiting for an operation to settle (a stuck one is an apt waiting on a prompt).",
        ),
    ]


def terminal_more(s: str, *, first_id: int, y: int) -> list[dict[str, Any]]:
    """What a node_exporter user looks for next: disks, network, inodes, sensors, time, uptime,
    file handles, and whether the detectors, collectors and drills themselves are healthy."""
    rate = "[$__rate_interval]"
    specs: list[tuple[str, str, list[tuple[str, str]], str, str, dict[str, Any]]] = [
        (
            "Disk throughput",
            "timeseries",
            [
                (f"rate(sentinel_disk_read_bytes_total{{{s}}}{rate})", "{{device}} read"),
                (f"rate(sentinel_disk_written_bytes_total{{{s}}}{rate})", "{{device}} written"),
            ],
            "Bps",
            "Bytes per second per disk; a disk busy all day with little throughput is failing.",
            {},
        ),
        (
            "Disk IOPS and busy time",
            "timeseries",
            [
                (f"rate(sentinel_disk_reads_completed_total{{{s}}}{rate})", "{{device}} reads/s"),
                (f"rate(sentinel_disk_writes_completed_total{{{s}}}{rate})", "{{device}} writes/s"),
                (f"rate(sentinel_disk_io_time_seconds_total{{{s}}}{rate})", "{{device}} busy"),
                (f"sentinel_disk_io_now{{{s}}}", "{{device}} in flight"),
            ],
            "short",
            "Operations per second, the busy share of each second and the requests in flight.",
            {},
        ),
        (
            "Disk latency",
            "timeseries",
            [
                (
                    f"rate(sentinel_disk_read_time_seconds_total{{{s}}}{rate}) / rate(sentinel_disk_reads_completed_total{{{s}}}{rate})",
                    "{{device}} read",
                ),
                (
                    f"rate(sentinel_disk_write_time_seconds_total{{{s}}}{rate}) / rate(sentinel_disk_writes_completed_total{{{s}}}{rate})",
                    "{{device}} write",
                ),
            ],
            "s",
            "Average time per read and write; tens of milliseconds on an SSD point at a failing disk.",
            {},
        ),
        (
            "Network throughput",
            "timeseries",
            [
                (f"rate(sentinel_network_receive_bytes_total{{{s}}}{rate})", "{{device}} in"),
                (f"rate(sentinel_network_transmit_bytes_total{{{s}}}{rate})", "{{device}} out"),
                (f"sentinel_network_speed_bytes{{{s}}}", "{{device}} link speed"),
            ],
            "Bps",
            "Bytes per second per interface against the link speed; a sustained upload raises transmit_high.",
            {},
        ),
        (
            "Network errors and drops",
            "timeseries",
            [
                (f"rate(sentinel_network_receive_errors_total{{{s}}}{rate})", "{{device}} rx errors"),
                (f"rate(sentinel_network_transmit_errors_total{{{s}}}{rate})", "{{device}} tx errors"),
                (f"rate(sentinel_network_receive_drops_total{{{s}}}{rate})", "{{device}} rx drops"),
                (f"rate(sentinel_network_transmit_drops_total{{{s}}}{rate})", "{{device}} tx drops"),
                (f"rate(sentinel_network_receive_packets_total{{{s}}}{rate})", "{{device}} rx packets"),
                (f"rate(sentinel_network_transmit_packets_total{{{s}}}{rate})", "{{device}} tx packets"),
            ],
            "pps",
            "Over 1 % of packets in error for an hour raises SentinelNetwork*Errors: cable, port or NIC.",
            {},
        ),
        (
            "Inodes used",
            "timeseries",
            [
                (f"sentinel_filesystem_files_used_ratio{{{s}}}", "{{mountpoint}}"),
            ],
            "percentunit",
            "Out of inodes means out of space for new files, however much is free.",
            {"thresholds": steps_from("filesystem_inodes_low")},
        ),
        (
            "Filesystem free space",
            "table",
            [
                (f"sentinel_filesystem_avail_bytes{{{s}}}", ""),
                (f"sentinel_filesystem_size_bytes{{{s}}}", ""),
                (f"sentinel_filesystem_files_free{{{s}}}", ""),
                (f"sentinel_filesystem_files{{{s}}}", ""),
            ],
            "bytes",
            "Free and total bytes and inodes per filesystem (the prediction rules extrapolate these).",
            {},
        ),
        (
            "Read-only or hung filesystems",
            "stat",
            [
                (f"sum(sentinel_filesystem_readonly{{{s}}}) or vector(0)", "read-only"),
                (f"sum(sentinel_filesystem_stalled{{{s}}}) or vector(0)", "hung"),
            ],
            "short",
            "Non-zero: a filesystem went read-only (disk errors) or stopped answering (stale mount).",
            {"thresholds": [(None, "green"), (1, "red")]},
        ),
        (
            "Temperature marks",
            "timeseries",
            [
                (f"sentinel_temperature_high_celsius{{{s}}}", "{{sensor}} high"),
                (f"sentinel_temperature_critical_celsius{{{s}}}", "{{sensor}} critical"),
            ],
            "celsius",
            "Each chip's own marks the temperature rule is relative to (none in a VM).",
            {},
        ),
        (
            "Fans",
            "timeseries",
            [
                (f"sentinel_fan_rpm{{{s}}}", "{{sensor}}"),
                (f"sentinel_fan_min_rpm{{{s}}}", "{{sensor}} minimum"),
            ],
            "rotrpm",
            "A fan at 0 rpm for 5 min raises fan_stopped; clean or replace it.",
            {"thresholds": [(None, "red"), (1, "green")]},
        ),
        (
            "Power and battery",
            "timeseries",
            [
                (f"sentinel_battery_capacity_ratio{{{s}}}", "{{supply}} charge"),
                (f"sentinel_battery_discharging{{{s}}}", "{{supply}} on battery"),
                (f"sentinel_power_supply_online{{{s}}}", "{{supply}} mains"),
            ],
            "percentunit",
            "On battery means mains power is lost (power_on_battery); below 20 % battery_low.",
            {"thresholds": steps_from("battery_low", below=True)},
        ),
        (
            "Clock",
            "stat",
            [
                (f"sentinel_timesync_synchronised{{{s}}}", "synchronised"),
            ],
            "short",
            "Not synchronised for 30 min raises clock_not_synchronised; check chrony/timesyncd and NTP reachability.",
            {
                "mappings": state_mapping("NOT synchronised", "synchronised"),
                "thresholds": [(None, "red"), (1, "green")],
            },
        ),
        (
            "Clock offset and error",
            "timeseries",
            [
                (f"sentinel_timesync_offset_seconds{{{s}}}", "offset"),
                (f"sentinel_timesync_estimated_error_seconds{{{s}}}", "estimated error"),
                (f"sentinel_timesync_maxerror_seconds{{{s}}}", "maximum error"),
            ],
            "s",
            "Over 50 ms and not converging for 10 min raises SentinelClockSkew.",
            {"thresholds": [(None, "green"), (0.05, "orange")]},
        ),
        (
            "Uptime",
            "stat",
            [
                (f"time() - sentinel_boot_time_seconds{{{s}}}", "uptime"),
                (f"time() - sentinel_start_time_seconds{{{s}}}", "agent uptime"),
            ],
            "s",
            "A reset uptime is a reboot (reboot_detected); a reset agent uptime is a restart.",
            {},
        ),
        (
            "File handles",
            "timeseries",
            [
                (f"sentinel_filefd_used_ratio{{{s}}}", "used"),
            ],
            "percentunit",
            "Over 80 % raises file_handles_high: a leaking application.",
            {"thresholds": steps_from("file_handles_high")},
        ),
        (
            "Processes by state",
            "timeseries",
            [
                (f"sentinel_processes{{{s}}}", "{{state}}"),
                (f"sentinel_load1{{{s}}}", "load1"),
                (f"sentinel_load15{{{s}}}", "load15"),
            ],
            "short",
            "Many zombies or processes in disk wait point at a broken application or disk.",
            {},
        ),
        (
            "Required services",
            "state-timeline",
            [
                (f"sentinel_service_up{{{s}}}", "{{service}} ({{kind}})"),
            ],
            "short",
            "A required unit or process down for 1 min raises required_service_down (critical).",
            {"mappings": state_mapping("down", "up")},
        ),
        (
            "Detector health",
            "state-timeline",
            [
                (f"sentinel_detector_up{{{s}}}", "{{detector}}"),
                (f"sentinel_collector_up{{{s}}}", "{{collector}}"),
            ],
            "short",
            "A blind detector (no source, no privilege) or failing collector shows red: it sees nothing.",
            {"mappings": state_mapping("blind / down", "up")},
        ),
        (
            "Audit trail (hash chain)",
            "state-timeline",
            [(f"sentinel_audit_chain_verified{{{s}}}", "verified")],
            "short",
            "0: the agent's last verification found an edited, removed or added history row; "
            "audit_trail_broken (critical) is raised and `sentinel hazards verify` names the row.",
            {"mappings": state_mapping("broken", "intact")},
        ),
        (
            "Audit trail: head, rows, breaks, last verification",
            "table",
            [
                (f"sentinel_audit_chain_head_info{{{s}}}", "head"),
                (f"sentinel_audit_chain_rows{{{s}}}", "rows"),
                (f"sentinel_audit_chain_breaks{{{s}}}", "breaks"),
                (f"time() - sentinel_audit_chain_last_verified_timestamp_seconds{{{s}}}", "since verified"),
                (f"sentinel_audit_chain_verify_duration_seconds{{{s}}}", "verify took"),
            ],
            "short",
            "The chain head (store id, hash) is what an auditor compares with the hub's copy.",
            {},
        ),
        (
            "Seconds since each collector last ran",
            "table",
            [
                (f"time() - sentinel_collector_last_run_timestamp_seconds{{{s}}}", ""),
            ],
            "s",
            "Over 600 s raises SentinelCollectorStalled: the collector is stuck.",
            {"thresholds": [(None, "green"), (300, "orange"), (600, "red")]},
        ),
        (
            "Drills",
            "table",
            [
                (f"sentinel_drill_last_result{{{s}}}", ""),
                (f"(time() - sentinel_drill_last_success_timestamp_seconds{{{s}}}) / 86400", ""),
            ],
            "short",
            "Last result per scenario (PASSED/FAILED) and days since one passed (35 raises SentinelNoDrillPassed).",
            {"mappings": state_mapping("FAILED", "PASSED")},
        ),
        (
            "Pipeline",
            "timeseries",
            [
                (f"sentinel_queue_depth{{{s}}} / sentinel_queue_capacity{{{s}}}", "queue fill"),
                (f"rate(sentinel_queue_dropped_total{{{s}}}{rate})", "{{collector}} dropped"),
                (f"rate(sentinel_findings_total{{{s}}}{rate})", "findings/s"),
                (f"rate(sentinel_store_write_errors_total{{{s}}}{rate})", "store write errors"),
            ],
            "short",
            "Anything dropped or a store write error is loss pressure (SentinelEventsDropped).",
            {},
        ),
        (
            "File integrity monitor health",
            "timeseries",
            [
                (f"increase(sentinel_fim_overflows_total{{{s}}}[1h])", "inotify overflows/h"),
                (f"increase(sentinel_fim_rescans_total{{{s}}}[1h])", "rescans/h {{reason}}"),
                (f"increase(sentinel_fim_skipped_total{{{s}}}[1h])", "skipped/h {{reason}}"),
                (f"sentinel_fim_unwatched_paths{{{s}}}", "unwatched directories"),
                (f"sentinel_fim_pending_paths{{{s}}}", "paths pending"),
                (f"sentinel_fim_scan_duration_seconds{{{s}}}", "{{mode}} scan seconds"),
            ],
            "short",
            "Overflows are reconciled by a rescan; unwatched directories are only rescanned every fallback_interval.",
            {},
        ),
        (
            "Agent health",
            "stat",
            [
                (f"sentinel_config_last_reload_successful{{{s}}}", "config reload"),
                (f"increase(sentinel_collector_errors_total{{{s}}}[1h])", "{{collector}} errors/h"),
            ],
            "short",
            "A rejected reload (the old config still runs) or a collector failing again and again.",
            {"mappings": state_mapping("REJECTED", "ok")},
        ),
        (
            "Process-start capture",
            "state-timeline",
            [(f'sentinel_exec_capture_mode{{{s},mode="connector"}}', "exec capture")],
            "short",
            "connector: every exec as it happens; poll only: the 10 s scan alone (no proc connector, or no CAP_NET_ADMIN before kernel 6.6), SentinelExecCapturePolling after 30 min.",
            {"mappings": state_mapping("poll only", "connector")},
        ),
        (
            "Process starts seen",
            "timeseries",
            [
                (f"rate(sentinel_exec_events_total{{{s}}}{rate})", "execs"),
                (f"rate(sentinel_exec_unresolved_total{{{s}}}{rate})", "exited before their exe was read"),
                (f"rate(sentinel_exec_lost_total{{{s}}}{rate})", "dropped by the kernel (a rescan follows)"),
            ],
            "ops",
            "What the processes detector receives from the kernel; losses are made good by a rescan, but a steady rate means the machine starts more than it can follow.",
            {},
        ),
        (
            "Agent memory",
            "timeseries",
            [(f"process_resident_memory_bytes{{{s}}}", "agent resident memory")],
            "bytes",
            "The agent's own resident memory (docs/integrity.md measures it); a steady climb is a leak: restart it and report.",
            {},
        ),
        (
            "Agent CPU and file descriptors",
            "timeseries",
            [
                (f"rate(process_cpu_seconds_total{{{s}}}{rate})", "agent CPU (of one core)"),
                (f"process_open_fds{{{s}}} / process_max_fds{{{s}}}", "descriptors used"),
            ],
            "percentunit",
            "The agent's own CPU share and descriptor use; near 100 % descriptors, watches and sockets start to fail.",
            {},
        ),
    ]
    out = []
    for i, (title, kind, exprs, unit, description, extra) in enumerate(specs):
        x, row = (i % 2) * 12, y + (i // 2) * 8
        out.append(
            panel(
                first_id + i, title, kind, exprs, x, row, 12, 8, unit=unit, description=description, **extra
            )
        )
    return out


def board(uid: str, title: str, panels: list[dict[str, Any]], *, with_instance: bool) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["sentinel"],
        "timezone": "browser",
        "schemaVersion": 41,  # Grafana 11.6: the schema tests/deploy/test_grafana.py checks against
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": variables(with_instance),
        "panels": panels,
        "annotations": {"list": []},
        "links": [
            {
                "title": "Sentinel boards",
                "type": "dashboards",
                "tags": ["sentinel"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
    }


LEFT_OUT = {
    "sentinel_build_info": "identity (version, terminal, branch) to join on, not a chart",
    "sentinel_cpus": "a constant; charted through sentinel_load_per_core",
    "sentinel_cpu_seconds_total": "charted as sentinel_cpu_utilisation_ratio (the agent's own busy share)",
    "sentinel_load5": "charted as sentinel_load_per_core (load5 over the CPUs)",
    "sentinel_memory_total_bytes": "charted as sentinel_memory_used_ratio",
    "sentinel_memory_available_bytes": "charted as sentinel_memory_used_ratio",
    "sentinel_swap_total_bytes": "charted as sentinel_swap_used_ratio",
    "sentinel_filefd_allocated": "charted as sentinel_filefd_used_ratio",
    "sentinel_filefd_maximum": "charted as sentinel_filefd_used_ratio",
    "sentinel_config_last_reload_success_timestamp_seconds": "the reload's success is charted; its time is in the log",
    "sentinel_drill_last_run_timestamp_seconds": "the last success is what alerts; `sentinel drill history` has each run",
    "sentinel_drill_probe_value": "the drill's own stimulus, not a reading",
    "sentinel_drill_stage_latency_seconds": "per-drill detail for `sentinel drill --json`",
    "sentinel_events_malformed_total": "parser detail for `sentinel logtest`; detector health is charted",
    "sentinel_device_read_errors_total": "unreadable /proc and /sys files; collector health is charted",
    "sentinel_fim_baseline_info": "a digest label; SentinelBaselineChanged alerts on its change",
    "sentinel_fim_last_scan_timestamp_seconds": "scan durations are charted; a stuck monitor shows as a stalled collector",
    "sentinel_service_check_failures_total": "systemctl not answering; the service states are charted",
    "sentinel_service_processes": "the process count behind sentinel_service_up, which is charted",
    "process_virtual_memory_bytes": "address space, not memory used: the resident memory is charted",
    "process_start_time_seconds": "the same instant as sentinel_start_time_seconds, which is charted",
    "python_info": "the interpreter's version: identity, not a chart",
    "python_gc_objects_collected_total": "interpreter internals; the agent's memory is charted",
    "python_gc_objects_uncollectable_total": "interpreter internals; the agent's memory is charted",
    "python_gc_collections_total": "interpreter internals; the agent's memory is charted",
}
"""Exported families deliberately not charted, each with the reason (docs/dashboards.md)."""

_NAME = re.compile(r"\b(?:sentinel|process|python)_[a-z0-9_]+")


def charted(boards: list[dict[str, Any]]) -> set[str]:
    """Every family of the agent's (sentinel_*, and prometheus_client's process_* and python_*)
    a panel query reads."""
    return {n for b in boards for p in b["panels"] for t in p["targets"] for n in _NAME.findall(t["expr"])}


def panel_docs(boards: list[dict[str, Any]]) -> str:
    """docs/dashboards.md: every panel's title, query and what to do when it turns red."""
    lines = [
        "# Grafana dashboards",
        "",
        "Provisioned from `deploy/grafana/dashboards/` (generated by `deploy/grafana/build.py`; this page",
        "too). Variables: `datasource` (a Prometheus data source), `job`, `branch` (multi), and on the",
        "terminal board `instance`. Copy `provisioning/` into `/etc/grafana/provisioning/` and the JSON",
        "files where `provisioning/dashboards/sentinel.yml` points. Both boards are checked against",
        "Grafana 11.6's dashboard schema (schemaVersion 41, as the Grafana Foundation SDK models it:",
        "no unknown key, every value of its field's type) by `tests/deploy/test_grafana.py`.",
        "",
    ]
    for dash in boards:
        lines += [f"## {dash['title']}", "", "| Panel | Query | When it turns red |", "|---|---|---|"]
        for p in dash["panels"]:
            queries = "<br>".join(f"`{t['expr'].replace('|', chr(92) + '|')}`" for t in p["targets"])
            lines.append(f"| {p['title']} | {queries} | {p['description']} |")
        lines.append("")
    lines += [
        "## Coverage",
        "",
        "Every family the agent exports is charted above or left out on purpose, here, with the reason",
        "(`tests/deploy/test_grafana.py` checks this list against docs/metrics.md and the other metric",
        "tables; `tests/e2e/test_prometheus.py` against a live scrape). Thresholds and value mappings",
        "come from the shipped rules (`config/rules.d`) when build.py runs.",
        "",
        "Charted: " + ", ".join(f"`{n}`" for n in sorted(charted(boards))) + ".",
        "",
        "| Left out | Why |",
        "|---|---|",
        *(f"| `{name}` | {why} |" for name, why in sorted(LEFT_OUT.items())),
        "",
    ]
    return "\n".join(lines)


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    boards = [fleet(), terminal()]
    out = {HERE / "dashboards" / f"{b['uid']}.json": json.dumps(b, indent=2) + "\n" for b in boards}
    out[HERE.parents[1] / "docs" / "dashboards.md"] = panel_docs(boards)
    return out


if __name__ == "__main__":
    for path, text in outputs().items():
        path.write_text(text)
