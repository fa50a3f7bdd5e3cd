"""`sentinel inventory [--json] [--packages]` and `sentinel inventory accept --by NAME`.

- `inventory`: the software inventory (package manager, count, digest; every package with
  `--packages` or `--json`), the last operations the agent recorded, and the peripherals:
  devices present and the required ones with their state (ok, missing, identity_changed).
- `inventory accept [--role PORT=ROLE ...]`: record the USB devices present now, each on its port,
  as what this terminal must have (`state_dir/peripherals.json`); the agent then reports a
  removal or a different device on one of those ports.

`--json` keys: `software` {`manager`, `installed`, `digest`, `packages` [{name, version, arch,
source}], `operations` [{id, start, end, changes}]}, `peripherals` {`present` [...], `required`
[{name, role, vendor_product, serial, port, state}]} (docs/change.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sentinel.cli.change import os_actor
from sentinel.cli.common import EXIT_OK, EXIT_PROBLEMS, CliError, load_config, printable
from sentinel.config.schema import Config
from sentinel.core.timefmt import iso
from sentinel.sources.detectors.packages import open_database
from sentinel.sources.detectors.peripherals import ROLES, accept, judge, learned
from sentinel.sources.detectors.usb import scan_devices

SYS_ROOT = Path("/sys")


def configure(
    command: str, inventory: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """`inventory` and its `accept` subcommand."""
    add_config(inventory)
    inventory.add_argument("--json", action="store_true")
    inventory.add_argument("--packages", action="store_true", help="list every installed package")
    inventory.add_argument("--sys-root", default=str(SYS_ROOT), help=argparse.SUPPRESS)
    inventory.set_defaults(func=cmd_show)
    sub = inventory.add_subparsers(dest="inventory_command", parser_class=type(inventory))
    acc = sub.add_parser("accept", help="record the USB devices present now as required equipment")
    add_config(acc)
    acc.add_argument("--by", metavar="NAME", help="who accepts it (default: your login)")
    acc.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="PORT=ROLE",
        help=f"the role of the device on a port (or vendor:product): {', '.join(ROLES)}",
    )
    acc.add_argument("--json", action="store_true")
    acc.add_argument("--sys-root", default=str(SYS_ROOT), help=argparse.SUPPRESS)
    acc.set_defaults(func=cmd_accept)


def software(cfg: Config, *, with_packages: bool) -> dict[str, Any]:
    """The software part of the inventory, read from the package database now."""
    settings = cfg.collectors.packages
    db = open_database(settings)
    if db is None:
        return {"manager": None, "installed": 0, "digest": None, "packages": [], "operations": []}
    packages, _ = db.installed()
    lines = sorted(f"{p.name} {p.version} {p.arch}" for p in packages)
    out: dict[str, Any] = {
        "manager": db.tool,
        "installed": len(packages),
        "digest": hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:16],
        "operations": _operations(cfg.agent.state_dir / "detectors" / "packages.json"),
    }
    if with_packages:
        out["packages"] = [
            {"name": p.name, "version": p.version, "arch": p.arch, "source": p.source}
            for p in sorted(packages, key=lambda p: p.key)
        ]
    return out


def _operations(path: Path) -> list[dict[str, Any]]:
    """The operations the agent remembers (its state file; [] when it has none)."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    ops = saved.get("operations", []) if isinstance(saved, dict) else []
    return [
        {
            "id": o.get("id"),
            "start": iso(o.get("start")),
            "end": iso(o.get("end")),
            "changes": [
                {"package": c[0], "action": c[1], "old": c[2], "new": c[3]} for c in o.get("changes", [])
            ],
        }
        for o in ops
        if isinstance(o, dict)
    ]


def peripherals(cfg: Config, sys_root: Path) -> dict[str, Any]:
    """Devices present and the required ones, each with its state."""
    devices = scan_devices(sys_root) or []
    required = (*cfg.collectors.usb.required, *learned(cfg.agent.state_dir))
    problems = {
        (p.required.name, p.required.port): p.kind for p in judge(required, [d.present for d in devices])
    }
    return {
        "present": [d.to_json() for d in devices],
        "required": [{**r.to_json(), "state": problems.get((r.name, r.port), "ok")} for r in required],
    }


def cmd_show(args: argparse.Namespace) -> int:
    """Print the inventory."""
    cfg = load_config(args)
    result = {
        "software": software(cfg, with_packages=args.json or args.packages),
        "peripherals": peripherals(cfg, Path(args.sys_root)),
    }
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return EXIT_OK
    sw = result["software"]
    manager = sw["manager"] or "no package database"
    print(f"software: {manager}, {sw['installed']} packages, digest {sw['digest']}")
    for p in sw.get("packages", []):
        print(f"  {printable(p['name'])} {printable(p['version'])} {p['arch']}")
    for op in sw["operations"][-5:]:
        summary = "; ".join(f"{c['action']} {c['package']} {c['new'] or c['old']}" for c in op["changes"][:4])
        print(f"  recorded {op['end']}: {printable(summary)}")
    hw = result["peripherals"]
    print(f"peripherals: {len(hw['present'])} present, {len(hw['required'])} required")
    for r in hw["required"]:
        where = r["port"] or "any"
        print(f"  {r['state']:<16} {r['role']:<16} {printable(r['name'])} {r['vendor_product']} port {where}")
    return EXIT_OK


def cmd_accept(args: argparse.Namespace) -> int:
    """Record what is attached now as the required equipment."""
    cfg = load_config(args)
    roles: dict[str, str] = {}
    for item in args.role:
        where, sep, role = item.partition("=")
        if not sep or role not in ROLES:
            raise CliError(f'--role: expected PORT=ROLE with ROLE one of {", ".join(ROLES)}, got "{item}"')
        roles[where] = role
    devices = scan_devices(Path(args.sys_root))
    if devices is None:
        raise CliError("no USB bus here (/sys/bus/usb/devices): nothing to accept", code=EXIT_PROBLEMS)
    try:
        accepted = accept(
            cfg.agent.state_dir,
            [d.present for d in devices],
            actor=os_actor(args.by),
            at=iso(time.time()) or "",
            roles=roles,
        )
    except OSError as exc:
        raise CliError(f"cannot write the peripheral inventory: {exc}", code=EXIT_PROBLEMS) from None
    if args.json:
        print(json.dumps([d.to_json() for d in accepted], indent=2, sort_keys=True))
    else:
        print(f"accepted {len(accepted)} devices as this terminal's required equipment")
        for d in accepted:
            serial = printable(d.serial) or "-"
            print(f"  {d.role:<16} {printable(d.name)} {d.vendor_product} serial {serial} port {d.port}")
    return EXIT_OK
