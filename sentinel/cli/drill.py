"""`sentinel drill [--scenario NAME|all] [--json]`, `sentinel drill history`, `sentinel drill list`.

Drills run against the running agent (its store and its /metrics); exit code 1 when any stage of
any scenario fails within the timeout, 0 when all pass.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from sentinel.agent.lock import holder_pid
from sentinel.agent.status import read_status
from sentinel.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    CliError,
    load_config,
    open_hazard_store,
    seconds_between,
)
from sentinel.config.schema import Config
from sentinel.drills.runner import DrillResult, DrillRunner
from sentinel.drills.scenarios import SCENARIOS
from sentinel.drills.scrape import scraper


def configure(
    command: str, p: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Arguments and handler of `drill`."""
    add_config(p)
    p.add_argument(
        "what",
        nargs="?",
        choices=["run", "history", "list"],
        default="run",
        help="run (default) a drill, show past results, or list the scenarios",
    )
    p.add_argument("--scenario", default="all", metavar="NAME|all")
    p.add_argument(
        "--timeout",
        type=seconds_between(1, 3600),
        default=30.0,
        metavar="SECONDS",
        help="per scenario (1-3600)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_drill)


def agent_address(config: Config) -> tuple[str, str]:
    """Where the running agent serves /metrics (status.json knows the real port if it was 0)."""
    listen = config.metrics.listen
    status = read_status(config.agent.state_dir)
    if status and status.get("listen"):
        listen = str(status["listen"])
    host, _, port = listen.rpartition(":")
    return host, port


def cmd_drill(args: argparse.Namespace) -> int:
    """Dispatch run / history / list."""
    if args.scenario != "all" and args.scenario not in SCENARIOS:  # a typo is a usage error, first
        raise CliError(f"unknown scenario {args.scenario!r} (known: {', '.join(SCENARIOS)}, all)")
    config = load_config(args)
    if args.what == "list":
        _print_list(config, as_json=args.json)
        return EXIT_OK
    store = open_hazard_store(config)
    try:
        if args.what == "history":
            runs = store.drills.runs(scenario=None if args.scenario == "all" else args.scenario)
            _print_history(runs, as_json=args.json)
            return EXIT_OK
        if holder_pid(config.agent.state_dir) is None:
            raise CliError(
                f"the agent is not running on {config.agent.state_dir}; drills test the running agent",
                code=EXIT_PROBLEMS,
            )
        names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
        host, port = agent_address(config)
        scrape = scraper(host, port, tls=bool(config.metrics.tls_cert_file))
        runner = DrillRunner(config, store, scrape=scrape, timeout=args.timeout)
        results = [runner.run(SCENARIOS[n]) for n in names]
    finally:
        store.close()
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            _print_result(r)
    ran = [r for r in results if not r.skipped]
    return EXIT_OK if ran and all(r.passed for r in ran) else EXIT_PROBLEMS


def _print_list(config: Config, *, as_json: bool) -> None:
    """The scenarios, and why one cannot run with this config (`--json`: name, description,
    available, unavailable_reason)."""
    rows = [
        (name, scenario.description, scenario.unavailable(config)) for name, scenario in SCENARIOS.items()
    ]
    if as_json:
        listing = [
            {"name": n, "description": d, "available": not r, "unavailable_reason": r or None}
            for n, d, r in rows
        ]
        print(json.dumps(listing, indent=2))
        return
    for name, description, reason in rows:
        print(f"{name:<12} {description}" + (f" (unavailable: {reason})" if reason else ""))


def _print_result(result: DrillResult) -> None:
    if result.skipped:
        print(f"drill {result.scenario}: SKIPPED ({result.skipped})")
        return
    print(f"drill {result.scenario}: {'PASSED' if result.passed else 'FAILED'}")
    for stage in result.stages:
        latency = f"{stage.latency_seconds:.3f}s" if stage.latency_seconds is not None else "-"
        detail = f"  {stage.detail}" if stage.detail else ""
        print(f"  {'ok  ' if stage.passed else 'FAIL'} {stage.name:<24} {latency:>9}{detail}")


def _print_history(runs: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(runs, indent=2))
        return
    if not runs:
        print("drills: (none recorded; `sentinel drill` runs them against the running agent)")
    for run in runs:
        failed = [s["name"] for s in run["stages"] if not s["passed"]]
        verdict = "passed" if run["passed"] else f"FAILED ({', '.join(failed)})"
        print(f"#{run['id']:<5} {run['started_at']}  {run['scenario']:<12} {run['trigger']:<9} {verdict}")
