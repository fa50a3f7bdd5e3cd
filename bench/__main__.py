"""`python -m bench [--quick] [--only NAME]`: run every bench/bench_*.py and write results."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Context, Figure, to_markdown

ROOT = Path(__file__).resolve().parents[1]


def installed_bytecode() -> None:
    """Compile Sentinel's modules, as `pip install` does: every `python -m sentinel` a benchmark
    starts then runs as an installed agent would, not compiling its sources first (this sandbox
    sets PYTHONDONTWRITEBYTECODE, under which nothing is ever cached)."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "sentinel")], check=True, capture_output=True
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="smoke run (under 2 minutes)")
    parser.add_argument("--only", action="append", default=[], help="run only bench_<NAME>")
    args = parser.parse_args(argv)
    modules = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    if args.only:
        modules = [m for m in modules if m.removeprefix("bench_") in args.only]
    figures: list[Figure] = []
    failures: list[str] = []
    installed_bytecode()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as scratch:
        for name in modules:
            print(f"== {name}", flush=True)
            module = importlib.import_module(f"bench.{name}")
            ctx = Context(quick=args.quick, scratch=Path(scratch) / name, root=ROOT)
            ctx.scratch.mkdir(parents=True)
            try:
                measured = module.run(ctx)
                for figure in measured:
                    figure.module = name
                    figure.extra.setdefault("ran_at", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
                figures += measured
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"   FAILED: {exc}", file=sys.stderr)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    header = (
        f"# Sentinel benchmark results\n\nRun {when} "
        f"on {platform.node()} ({platform.machine()}, Python {platform.python_version()})"
        f"{', quick mode' if args.quick else ''}; {time.time() - started:.0f} s."
    )
    if failures:
        header += "\n\nBenchmarks that failed to run:\n" + "\n".join(f"- {f}" for f in failures)
    unstated = [f"{f.module}: {f.name}" for f in figures if not f.load]
    if unstated:  # every figure says what it was measured under (paced, burst, size)
        header += "\n\nFigures that do not state their load:\n" + "\n".join(f"- {u}" for u in unstated)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    if args.only and (out / "latest.json").exists():
        # a partial run replaces only its own modules' figures; the rest keep their earlier run
        earlier = json.loads((out / "latest.json").read_text())
        kept = [Figure.from_dict(f) for f in earlier["figures"] if f.get("module") not in modules]
        if kept:
            header += "\n\nMerged with figures from earlier runs of: " + ", ".join(
                sorted({f"{f.module} ({f.extra.get('ran_at', '?')})" for f in kept})
            )
        figures = kept + figures
    (out / "latest.json").write_text(
        json.dumps(
            {
                "started": started,
                "quick": args.quick,
                "figures": [f.as_dict() for f in figures],
                "failures": failures,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "latest.md").write_text(to_markdown(figures, header=header))
    print((out / "latest.md").read_text())
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
