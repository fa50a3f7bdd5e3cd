"""Which collectors exist: every collector module declares one `COLLECTOR = Registration(...)`.

As node_exporter's collectors register themselves, a new collector is one new module in
`sentinel/sources/host/` or `sentinel/sources/detectors/`: its Registration names it, its settings
dataclass (the `[collectors.<name>]` table, assembled into the config by `sentinel.config.schema`),
how it is built, and when it is enabled. Nothing else is edited. The declaration is a plain
constant: finding them imports the modules, but importing a module changes no global state.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import replace
from typing import Any

from sentinel.sources.base import Registration

SEARCHED = ("sentinel.sources.host", "sentinel.sources.detectors")
"""Packages whose every module may declare a collector."""
ENTRY_POINTS = ("sentinel.sources.integrity.registration",)
"""Collectors that are packages of their own: the one module that declares them."""


@functools.cache
def registrations() -> tuple[Registration[Any], ...]:
    """Every declared collector, package by package and module name by module name."""
    modules: list[str] = []
    for package_name in SEARCHED:
        package = importlib.import_module(package_name)
        modules += [f"{package_name}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    found: dict[str, Registration[Any]] = {}
    for module_name in (*modules, *ENTRY_POINTS):
        entry = getattr(importlib.import_module(module_name), "COLLECTOR", None)
        if not isinstance(entry, Registration):
            continue
        if entry.name in found:
            raise ValueError(f"two collectors are named {entry.name!r} ({module_name})")
        found[entry.name] = replace(entry, group=module_name.split(".")[2])
    return tuple(found.values())


def names(group: str) -> tuple[str, ...]:
    """The names of the collectors of one group ("host", "detectors", "integrity")."""
    return tuple(r.name for r in registrations() if r.group == group)
