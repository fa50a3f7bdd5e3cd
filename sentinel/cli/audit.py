"""`sentinel hazards verify` and `sentinel hazards trail`: the hash-chained trail, for operators
and auditors (docs/hazards.md "The trail").

`verify` recomputes every link and checks the tables against the chain; it exits 1 naming the
first broken row. `--expect SEQ:HASH` (or `--expect-file`, e.g. the chain links of the tickets a
central copy holds) also proves the trail still holds what was seen centrally. `trail` prints
every link with its row, one JSON document per line, to recompute and compare elsewhere.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, printable
from sentinel.hazards.chain import Verdict

SHOWN_BREAKS = 20


def configure(
    hsub: Any, add_config: Callable[[argparse.ArgumentParser], None], store: Callable[..., Any]
) -> None:
    """Add `verify` and `trail` to the `hazards` subcommands."""
    verify = hsub.add_parser(
        "verify", help="recompute the hash-chained trail; exit 1 naming the first broken row"
    )
    add_config(verify)
    verify.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a link a central copy holds (repeatable)",
    )
    verify.add_argument(
        "--expect-file",
        metavar="FILE",
        help='links a central copy holds: lines "SEQ HASH", or JSON tickets / {"seq", "hash"} per line',
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=lambda args: cmd_verify(args, store))

    trail = hsub.add_parser("trail", help="every link of the trail with its row (JSON lines), for auditors")
    add_config(trail)
    trail.add_argument(
        "--from", dest="from_seq", type=int, default=1, metavar="SEQ", help="start at this row"
    )
    trail.set_defaults(func=lambda args: cmd_trail(args, store))


def cmd_verify(args: argparse.Namespace, store_of: Callable[..., Any]) -> int:
    """Verify; print the verdict; 0 intact, 1 broken."""
    expected = _expected(args.expect, args.expect_file)
    _cfg, store = store_of(args)
    try:
        verdict: Verdict = store.verify(expected)
    finally:
        store.close()
    if args.json:
        print(json.dumps(verdict.to_json(), indent=2, sort_keys=True))
        return EXIT_OK if verdict.ok else EXIT_PROBLEMS
    print(
        f"trail of store {verdict.store_id}: {verdict.rows} rows ({verdict.pruned} of pruned hazards), "
        f"head row {verdict.head_seq} {verdict.head_hash}"
        + (f"; {len(expected)} central link(s) compared" if expected else "")
    )
    if verdict.ok:
        print("intact")
        return EXIT_OK
    first = verdict.first
    assert first is not None
    print(f"BROKEN: {printable(first.message)}")
    for extra in verdict.breaks[1:SHOWN_BREAKS]:
        print(f"  also: {printable(extra.message)}")
    if len(verdict.breaks) > SHOWN_BREAKS:
        print(f"  and {len(verdict.breaks) - SHOWN_BREAKS} more (--json lists all)")
    return EXIT_PROBLEMS


def cmd_trail(args: argparse.Namespace, store_of: Callable[..., Any]) -> int:
    """Print the links as JSON lines."""
    _cfg, store = store_of(args)
    try:
        for link in store.trail_links(args.from_seq):
            print(json.dumps(link, sort_keys=True, ensure_ascii=True))
    finally:
        store.close()
    return EXIT_OK


def _expected(pairs: list[str], path: str | None) -> dict[int, str]:
    out: dict[int, str] = {}
    lines = [("--expect", p) for p in pairs]
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from None
        lines += [(path, line) for line in text.splitlines() if line.strip()]
    for where, line in lines:
        seq, digest = _pair(line.strip())
        if seq is None:
            raise CliError(f'{where}: expected "SEQ:HASH", "SEQ HASH" or a JSON ticket, got {line[:60]!r}')
        out[seq] = digest
    return out


def _pair(text: str) -> tuple[int | None, str]:
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return None, ""
        link = doc.get("chain", doc) if isinstance(doc, dict) else None
        if isinstance(link, dict) and isinstance(link.get("seq"), int) and isinstance(link.get("hash"), str):
            return int(link["seq"]), str(link["hash"])
        return None, ""
    parts = text.replace(":", " ").split()
    if len(parts) == 2 and parts[0].isdigit() and len(parts[1]) == 64:
        return int(parts[0]), parts[1].lower()
    return None, ""
