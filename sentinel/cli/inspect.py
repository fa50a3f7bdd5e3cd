"""`sentinel inspect [--json|--markdown]`: one inspection of this terminal, now.

Exit code 1 when the inspection found problems (a failed check, a threshold crossed, a changed
baseline), else 0. Failed checks raise hazards unless `--no-hazards` or `[inspect] raise_hazards
= false`; checks that pass again resolve them.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable
from typing import Any


def add_inspect_command(sub: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `inspect`."""
    p = sub.add_parser("inspect", help="inspect this terminal's posture, health, baseline and hazards")
    add_config(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="the report as JSON")
    fmt.add_argument("--markdown", action="store_true", help="the report as markdown")
    p.add_argument("--no-hazards", action="store_true", help="do not raise hazards for failed checks")
    p.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    p.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Run the inspection, print the report, raise hazards for failed checks."""
    import json
    import time

    from sentinel.agent.wiring import baseline_summary, open_store
    from sentinel.cli.main import EXIT_OK, EXIT_PROBLEMS, CliError, load_config
    from sentinel.inspect import report as render
    from sentinel.inspect.checks import Evaluator
    from sentinel.inspect.runner import collect_health, findings_for, hazards_summary, run_inspection

    config = load_config(args)
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
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}", code=EXIT_PROBLEMS) from None
    else:
        print(text, end="")
    return EXIT_PROBLEMS if report.problems else EXIT_OK
