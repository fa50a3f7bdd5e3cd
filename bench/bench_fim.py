"""File integrity: Sentinel's baseline and check against AIDE and the sha256sum floor, side by side.

On one tree (/usr/share, ~47k files; /usr/share/doc in quick mode), interleaved in one run:

- `sentinel baseline init` vs `aide --init` (attributes p+i+n+u+g+s+m+c+sha256, AIDE's default
  number of workers) vs `find TREE -type f -print0 | xargs -0 -P2 sha256sum` (the hashing floor),
- `sentinel baseline check` (quick mode, nothing changed) vs `aide --check`,
- both again on generated trees of 10k, 50k and 200k small files (1k, 2k and 4k in quick mode), and
  the cost of an added file between successive sizes (linear or not),
- the agent's RSS while watching the tree (a real `sentinel run`), at first start and restart.

Every command runs as a process with warm caches (one unrecorded warm-up round each).
"""

from __future__ import annotations

import itertools
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.agentrun import scrape, shipped_config, start_agent, stop
from bench.harness import Context, Figure, Stats
from bench.procstat import rss_bytes

INIT_VS_AIDE = 2.0  # issue 23: baseline init at least twice as fast as `aide --init` at every size
INIT_VS_FLOOR = 1.1  # and within 1.1x of the sha256sum floor on /usr/share
CHECK_VS_AIDE = 30.0  # quick check at least 30x faster than `aide --check` at every size
LINEAR_SLACK = 1.25  # the check's cost per file at the largest size over that at the smallest

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


def _measure(ctx: Context, tree: Path, rounds: int, *, floor: bool) -> dict[str, list[float]]:
    """Seconds per run of Sentinel's and AIDE's init and check on `tree` (and the sha256sum
    floor's), in rotating order after one unrecorded round each."""
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

    runners = {
        "sentinel": lambda: _run([*sentinel, "init", "--force", "--config", str(config)]),
        "aide": aide_init,
    }
    if floor:
        command = f"find {tree} -type f -print0 | xargs -0 -P2 -n 500 sha256sum > /dev/null"
        runners["floor"] = lambda: _run(["bash", "-c", command], ok=(0, 123))  # 123: a file vanished
    init = _rounds(runners, rounds)
    check = _rounds(
        {
            "sentinel": lambda: _run([*sentinel, "check", "--config", str(config)], ok=(0, 1)),
            "aide": lambda: _run([aide, "--check", f"--config={aide_conf}"], ok=tuple(range(8))),
        },
        rounds,
    )
    return {f"init_{k}": v for k, v in init.items()} | {f"check_{k}": v for k, v in check.items()}


def _size(tree: Path) -> tuple[int, float]:
    files = [p for p in tree.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def _beside_aide(runs: dict[str, list[float]], what: str, load: str, notes: str = "") -> list[Figure]:
    """Sentinel's init and check beside AIDE's, each against its goal (issue 23)."""
    s_init, a_init = Stats.of(runs["init_sentinel"]), Stats.of(runs["init_aide"])
    s_check, a_check = Stats.of(runs["check_sentinel"]), Stats.of(runs["check_aide"])
    return [
        Figure(
            f"baseline init, {what}",
            "s",
            s_init,
            a_init,
            "aide --init",
            goal=f"≥ {INIT_VS_AIDE:g}× faster than AIDE",
            met=a_init.median / s_init.median >= INIT_VS_AIDE,
            load=load,
        ),
        Figure(
            f"quick check, nothing changed, {what}",
            "s",
            s_check,
            a_check,
            "aide --check",
            goal=f"≥ {CHECK_VS_AIDE:g}× faster than AIDE",
            met=a_check.median / s_check.median >= CHECK_VS_AIDE,
            load=load,
            notes=notes,
        ),
    ]


def _baseline_figures(ctx: Context, tree: Path, rounds: int) -> list[Figure]:
    """Init beside AIDE and the hashing floor, check beside AIDE, on a real tree."""
    runs = _measure(ctx, tree, rounds, floor=True)
    files, mb = _size(tree)
    load = f"{tree}: {files:,} files, {mb:,.0f} MB, warm cache; {rounds} rounds in rotating order"
    s_init, f_init = Stats.of(runs["init_sentinel"]), Stats.of(runs["init_floor"])
    floor = Figure(
        f"baseline init vs hashing floor, {tree}",
        "s",
        s_init,
        f_init,
        "find | xargs -P2 sha256sum",
        goal=f"within {INIT_VS_FLOOR:g}× of the floor",
        met=s_init.median <= INIT_VS_FLOOR * f_init.median,
        load=load,
    )
    return [*_beside_aide(runs, str(tree), load), floor]


def make_tree(root: Path, files: int, *, per_dir: int = 200, seed: int = 1) -> Path:
    """`files` small files (0-8 KiB of random bytes, as config and doc trees hold) in
    directories of `per_dir`."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        directory = root / f"d{i // per_dir:05d}"
        if i % per_dir == 0:
            directory.mkdir(exist_ok=True)
        (directory / f"f{i:07d}").write_bytes(rng.randbytes(rng.randrange(0, 8192)))
    return root


def _scaling_figures(ctx: Context, sizes: tuple[int, ...], rounds: int) -> list[Figure]:
    """Init and check beside AIDE on generated trees of growing size, and the check's cost per
    file at each size (linear: the same at every size)."""
    figures: list[Figure] = []
    check_s: dict[int, float] = {}
    for files in sizes:
        tree = make_tree(ctx.scratch / f"tree-{files}", files)
        runs = _measure(ctx, tree, rounds, floor=False)
        _n, mb = _size(tree)
        load = f"generated tree: {files:,} files, {mb:,.0f} MB, warm cache; {rounds} rounds in rotating order"
        check_s[files] = statistics.median(runs["check_sentinel"])
        per_file = check_s[files] / files * 1e6
        figures += _beside_aide(runs, f"{files:,} files", load, notes=f"{per_file:.1f} µs per file")
        shutil.rmtree(tree, ignore_errors=True)
    # the cost of each added file between successive sizes (the fixed start-up cost cancels out)
    sizes_run = sorted(check_s)
    marginal = [(check_s[b] - check_s[a]) / (b - a) * 1e6 for a, b in itertools.pairwise(sizes_run)]
    # a size that took no longer than a smaller one is noise: no verdict on linearity then
    growth = marginal[-1] / marginal[0] if min(marginal) > 0 else float("nan")
    span = f"{sizes_run[-2]:,}→{sizes_run[-1]:,} vs {sizes_run[0]:,}→{sizes_run[1]:,} files"
    figures.append(
        Figure(
            f"quick check, cost of an added file, {span}",
            "×",
            Stats.of([growth]),
            goal=f"≤ {LINEAR_SLACK:g}× (linear in files)",
            met=growth <= LINEAR_SLACK if min(marginal) > 0 else None,
            load=f"generated trees of {', '.join(f'{n:,}' for n in sizes)} files",
            notes="µs per added file: " + ", ".join(f"{m:.1f}" for m in marginal),
        )
    )
    return figures


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
        load = f"the agent on the shipped config also watching {tree}, after its {phase}"
        figures.append(Figure(name, "MB", rss, goal="< 80 MB", met=rss.median < 80, load=load))
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
    sizes = (1_000, 2_000, 4_000) if ctx.quick else (10_000, 50_000, 200_000)
    figures += _scaling_figures(ctx, sizes, rounds=1 if ctx.quick else 2)
    figures += _rss_figures(ctx, tree)
    return figures
