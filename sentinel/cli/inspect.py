"""`sentinel inspect [--json|--markdown]`: one inspection of this terminal, now.

Exit code 1 when the inspection found problems (a failed check, a threshold crossed, a changed
baseline), else 0. Failed checks raise hazards unless `--no-hazards` or `[inspect] raise_hazards
= false`; checks that pass again resolve them.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Callable

from sentinel.agent.inspection import baseline_summary, collect_health, hazards_summary
from sentinel.agent.wiring import open_store
from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, check_output, load_config, write_report
from sentinel.core.privileges import reduced_coverage
from sentinel.inspect import report as render
from sentinel.inspect.checks import Evaluator
from sentinel.inspect.runner import findings_for, run_inspection


def configure(
    command: str, p: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Arguments and handler of `inspect`."""
    add_config(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the report as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the report as markdown")
    p.add_argument("--no-hazards", action="store_true", help="do not raise hazards for failed checks")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Run the inspection, print the report, raise hazards for failed checks."""
    config = load_config(args)
    check_output(args.output)  # before any hazard is raised: the report must be able to land
    coverage = reduced_coverage()
    if coverage:
        print(f"sentinel: note: {coverage}", file=sys.stderr)
    evaluator = Evaluator(root=config.inspect.root, timeout=config.inspect.command_timeout)
    report = run_inspection(
        config,
        collect_samples=lambda: collect_health(config),
        evaluator=evaluator,
        hazards_summary=lambda: hazards_summary(config),
        baseline_check=lambda: baseline_summary(config),
        now=time.time(),
    )
    if config.inspect.raise_hazards and not args.no_hazards:
        try:
            store = open_store(config)
            try:
                for finding in findings_for(report.checks, now=report.started_at):
                    store.apply(finding)
            finally:
                store.close()
        except (sqlite3.Error, OSError) as exc:
            report.load_errors.append(f"could not record hazards: {exc}")
    if args.json:
        text = json.dumps(report.as_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    elif args.markdown:
        text = render.to_markdown(report)
    else:
        text = render.to_text(report)
    write_report(args.output, text)
    return EXIT_PROBLEMS if report.problems else EXIT_OK
