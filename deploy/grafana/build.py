"""Writes the two provisioned dashboards. Edit the panel lists here, run `python deploy/grafana/build.py`.

Every query selects `job="$job"` and the branch/instance variables, and every panel uses the
`datasource` template variable (never `${DS_...}` inputs, which only work in UI import).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job="$job",branch=~"$branch"'
ACTIVE = 'state=~"open|acknowledged|rectifying"'


def variables(with_instance: bool) -> dict[str, Any]:
    def query(name: str, expr: str, multi: bool = True) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": DS,
            "query": {"query": expr, "refId": name},
            "definition": expr,
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
    **extra: Any,
) -> dict[str, Any]:
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
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
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
    p += it_change_fleet(first_id=len(p) + 1, y=26)
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
        ),
        panel(
            4,
            "Filesystem used",
            "timeseries",
            [(f"sentinel_filesystem_used_ratio{{{s}}}", "{{mountpoint}}")],
            0,
            7,
            12,
            7,
            unit="percentunit",
            description="90 % major, 97 % critical; free space before the application fails to write.",
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
            [(f"sentinel_network_up{{{s}}}", "{{interface}}")],
            0,
            14,
            12,
            6,
            description="A link down cuts the terminal off; check the cable and switch port.",
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
    p += it_change_terminal(s, first_id=len(p) + 1, y=40)
    return board("sentinel-terminal", "Sentinel — terminal", p, with_instance=True)


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


def board(uid: str, title: str, panels: list[dict[str, Any]], *, with_instance: bool) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["sentinel"],
        "timezone": "browser",
        "schemaVersion": 38,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": variables(with_instance),
        "panels": panels,
        "annotations": {"list": []},
    }


def panel_docs(boards: list[dict[str, Any]]) -> str:
    """docs/dashboards.md: every panel's title, query and what to do when it turns red."""
    lines = [
        "# Grafana dashboards",
        "",
        "Provisioned from `deploy/grafana/dashboards/` (generated by `deploy/grafana/build.py`; this page",
        "too). Variables: `datasource` (a Prometheus data source), `job`, `branch` (multi), and on the",
        "terminal board `instance`. Copy `provisioning/` into `/etc/grafana/provisioning/` and the JSON",
        "files where `provisioning/dashboards/sentinel.yml` points.",
        "",
    ]
    for dash in boards:
        lines += [f"## {dash['title']}", "", "| Panel | Query | When it turns red |", "|---|---|---|"]
        for p in dash["panels"]:
            queries = "<br>".join(f"`{t['expr'].replace('|', chr(92) + '|')}`" for t in p["targets"])
            lines.append(f"| {p['title']} | {queries} | {p['description']} |")
        lines.append("")
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
