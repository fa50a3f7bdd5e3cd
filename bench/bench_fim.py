"""File integrity: Sentinel's baseline and check against AIDE and the sha256sum floor, side by side.

On one tree (/usr/share, ~47k files; /usr/share/doc in quick mode), interleaved in one run:

- `sentinel baseline init` vs `aide --init` (attributes p+i+n+u+g+s+m+c+sha256, AIDE's default
  number of workers) vs `find TREE -type f -print0 | xargs -0 -P2 sha256sum` (the hashing floor),
- `sentinel baseline check` (quick mode, nothing changed) vs `aide --check`,
- the agent's RSS while watching the tree (a real `sentinel run`), at first start and restart.

Every command runs as a process with warm caches (one unrecorded warm-up round each).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.agentrun import scrape, shipped_config, start_agent, stop
from bench.harness import Context, Figure, Stats
from bench.procstat import rss_bytes

AIDE_CONF = """\
database_in=file:{db}
database_out=file:{db_new}
database_new=file:{db_new}
gzip_dbout=no
report_url=stdout
Sentinel = p+i+n+u+g+s+m+c+sha256
{tree} Sentinel
"""


def _tree(ctx: Context) -> Path:
    return Path("/usr/share/doc") if ctx.quick else Path("/usr/share")


def _sentinel_config(ctx: Context, tree: Path) -> Path:
    directory = ctx.scratch / "cli"
    directory.mkdir(exist_ok=True)
    config = directory / "sentinel.toml"
    config.write_text(
        f'[agent]\nstate_dir = "state"\nbranch = "bench"\n\n'
        f'[[integrity.watch]]\npath = "{tree}"\npolicy = "readonly"\n'
    )
    return config


def _run(command: list[str], *, ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode not in ok:
        raise RuntimeError(f"{command[0]} exited {result.returncode}: {result.stderr.decode()[-300:]}")
    return elapsed


def _rounds(runners: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each runner once unrecorded, then `rounds` rounds in a rotating order."""
    names = list(runners)
    for name in names:
        runners[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            out[name].append(runners[name]())
    return out


def _baseline_figures(ctx: Context, tree: Path, rounds: int) -> list[Figure]:
    aide = shutil.which("aide")
    if aide is None:
        raise RuntimeError("aide not installed (make bench installs it as root)")
    config = _sentinel_config(ctx, tree)
    sentinel = [sys.executable, "-m", "sentinel", "baseline"]
    db, db_new = ctx.scratch / "aide.db", ctx.scratch / "aide.db.new"
    aide_conf = ctx.scratch / "aide.conf"
    aide_conf.write_text(AIDE_CONF.format(db=db, db_new=db_new, tree=tree))

    def aide_init() -> float:
        elapsed = _run([aide, "--init", f"--config={aide_conf}"])
        db_new.replace(db)
        return elapsed

    floor = ["bash", "-c", f"find {tree} -type f -print0 | xargs -0 -P2 -n 500 sha256sum > /dev/null"]
    init = _rounds(
        {
            "sentinel": lambda: _run([*sentinel, "init", "--force", "--config", str(config)]),
            "aide": aide_init,
            "floor": lambda: _run(floor, ok=(0, 123)),  # 123: a file vanished or was unreadable
        },
        rounds,
    )
    check = _rounds(
        {
            "sentinel": lambda: _run([*sentinel, "check", "--config", str(config)], ok=(0, 1)),
            "aide": lambda: _run([aide, "--check", f"--config={aide_conf}"], ok=tuple(range(8))),
        },
        rounds,
    )
    files = sum(1 for p in tree.rglob("*") if p.is_file() and not p.is_symlink())
    s_init, a_init, f_init = (Stats.of(init[k]) for k in ("sentinel", "aide", "floor"))
    s_check, a_check = Stats.of(check["sentinel"]), Stats.of(check["aide"])
    return [
        Figure(
            f"baseline init, {tree} ({files:,} files)",
            "s",
            s_init,
            a_init,
            "aide --init",
            goal="≥ 5× faster than AIDE",
            met=a_init.median / s_init.median >= 5,
        ),
        Figure(
            f"baseline init vs hashing floor, {tree}",
            "s",
            s_init,
            f_init,
            "find | xargs -P2 sha256sum",
            goal="within 1.5× of the floor",
            met=s_init.median <= 1.5 * f_init.median,
        ),
        Figure(
            f"quick check, nothing changed, {tree}",
            "s",
            s_check,
            a_check,
            "aide --check",
            goal="≥ 20× faster than AIDE",
            met=a_check.median / s_check.median >= 20,
        ),
    ]


def _rss_figures(ctx: Context, tree: Path) -> list[Figure]:
    """The real agent on the shipped config, also watching `tree`: RSS at its first start (once
    its baseline is taken) and after a restart (once the baseline is loaded and the startup
    rescan has run)."""
    extra = f'\n[[integrity.watch]]\npath = "{tree}"\npolicy = "readonly"\n'
    config, port = shipped_config(ctx.root, ctx.scratch / "agent", extra)
    figures = []
    for phase in ("first start", "restart"):
        log = ctx.scratch / f"agent-{phase.replace(' ', '-')}.log"
        proc = start_agent(config, port, log)
        try:
            if phase == "first start":
                _wait(proc, lambda log=log: "fim_baseline_created" in log.read_text(errors="replace"))
            else:
                _wait(proc, lambda: b'sentinel_fim_last_scan_timestamp_seconds{mode="quick"}' in scrape(port))
            samples = []
            for _ in range(5):
                time.sleep(0.5)
                samples.append(rss_bytes(proc.pid) / 1e6)
        finally:
            stop(proc)
        rss = Stats.of(samples)
        name = f"agent RSS while watching {tree} ({phase})"
        figures.append(Figure(name, "MB", rss, goal="< 80 MB", met=rss.median < 80))
    return figures


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the agent did not finish its integrity start")
        time.sleep(0.2)


def run(ctx: Context) -> list[Figure]:
    tree = _tree(ctx)
    figures = _baseline_figures(ctx, tree, rounds=1 if ctx.quick else 3)
    figures += _rss_figures(ctx, tree)
    return figures
