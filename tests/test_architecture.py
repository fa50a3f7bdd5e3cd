"""The house's shape (docs/architecture.md): every import points down the dependency rule, no
import circle, function-local imports only for start-up time, the CLI starts light, and no
module or class grows past its size limit without saying why."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sentinel"

_BELOW_CONFIG = frozenset({"core", "sources", "rules", "hazards", "tickets"})
_BELOW_AGENT = _BELOW_CONFIG | {"config", "exposition", "pipeline", "inspect", "drills"}
RULE: dict[str, frozenset[str]] = {
    # level 0
    "core": frozenset(),
    # level 1: what observes, judges, keeps and delivers (tickets read hazard records)
    "sources": frozenset({"core"}),
    "rules": frozenset({"core"}),
    "hazards": frozenset({"core"}),
    "tickets": frozenset({"core", "hazards"}),
    # level 2: the whole configuration, assembled from the sections level 1 owns
    "config": _BELOW_CONFIG,
    # level 3: what runs on the configuration
    "pipeline": _BELOW_CONFIG | {"config"},
    "exposition": _BELOW_CONFIG | {"config"},
    "inspect": _BELOW_CONFIG | {"config"},
    "drills": _BELOW_CONFIG | {"config"},
    # level 4 and 5
    "agent": _BELOW_AGENT,
    "cli": _BELOW_AGENT | {"agent", "hub"},
    # the fleet ledger (docs/hub.md): the core, the hazard lifecycle and export, the ticket payload;
    # never the agent (DESIGN §2)
    "hub": frozenset({"core", "hazards", "tickets"}),
    # the user-facing test helpers and the `python -m sentinel` entry
    "testing": frozenset({"core"}),
    "__main__": frozenset({"cli"}),
}
"""Package -> the packages its modules may import (besides their own and `sentinel` itself)."""

INSIDE_SOURCES: dict[str, tuple[str, ...]] = {
    "sources.parsers": ("core",),
    "sources.host": ("core", "sources.base", "sources.registry", "sources.sight", "sources.parsers"),
    "sources.detectors": ("core", "sources.base", "sources.registry", "sources.sight", "sources.parsers"),
    "sources.integrity": ("core", "sources.base", "sources.registry", "sources.sight"),
}
"""Inside sources: parsers know no collector; collectors know the protocols, the registry, the
sight probes and the parsers, never each other across groups."""

STARTUP_COMMENT = "# start-up time:"
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300
SIZE_REASON = "Size:"  # a module docstring line starting so exempts it from the size limits


@dataclass(frozen=True)
class Import:
    """One import of a sentinel module by a sentinel module."""

    source: str
    target: str
    line: int
    local: bool  # inside a function


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, name: str | None) -> str:
    """`from module import name`: the submodule when `name` is one, else the module."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module


def _imports(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    local_nodes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            local_nodes |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    for node in ast.walk(tree):
        local = id(node) in local_nodes
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sentinel":
                    yield Import(name, alias.name, node.lineno, local)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sentinel":
            for alias in node.names:
                yield Import(name, _resolve(node.module, alias.name), node.lineno, local)


def _dynamic_imports() -> Iterator[Import]:
    """What is imported by name at run time: the CLI's command groups, the collector registry's
    modules."""
    from sentinel.cli.main import COMMANDS
    from sentinel.sources import registry

    for module, _help in COMMANDS.values():
        yield Import("sentinel.cli.main", module, 0, True)
    for module in registry.ENTRY_POINTS:
        yield Import("sentinel.sources.registry", module, 0, True)
    for package in registry.SEARCHED:
        for name in MODULES:
            if name.startswith(package + "."):
                yield Import("sentinel.sources.registry", name, 0, True)


def all_imports() -> list[Import]:
    """Every import between sentinel modules, function-local and dynamic ones included."""
    found = [i for name, path in MODULES.items() for i in _imports(name, path)]
    return found + list(_dynamic_imports())


def _package(module: str) -> str:
    """The rule's name for a module's package: `sources.host`, `hazards`, `` for sentinel itself."""
    rel = module.split(".")[1:]
    if not rel:
        return ""
    if rel[0] == "sources" and len(rel) > 2 and ".".join(rel[:2]) in INSIDE_SOURCES:
        return ".".join(rel[:2])
    return rel[0]


def breaks_rule(imp: Import) -> bool:
    """Whether one import points where the dependency rule does not allow."""
    source, target = _package(imp.source), _package(imp.target)
    if target in ("", source):
        return False
    if source in INSIDE_SOURCES:
        rel = ".".join(imp.target.split(".")[1:])
        return not any(rel == p or rel.startswith(p + ".") for p in INSIDE_SOURCES[source])
    top_source, top_target = source.split(".")[0], target.split(".")[0]
    if top_source == top_target:  # e.g. sources.registry -> sources.host.*
        return False
    return top_target not in RULE[top_source]


def cycles(imports: list[Import]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module, or a
    module importing itself), by Tarjan's algorithm."""
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        graph[imp.source].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_under_the_rule() -> None:
    """Each package of sentinel/ has a place in the rule (a new package must be given one)."""
    unknown = {_package(m).split(".")[0] for m in MODULES} - set(RULE) - {""}
    assert not unknown, f"packages with no place in the dependency rule: {sorted(unknown)}"


def test_every_import_follows_the_dependency_rule() -> None:
    """cli -> agent -> {exposition, pipeline, inspect, drills} -> config -> {sources, rules,
    hazards, tickets} -> core, function-local and dynamic imports included."""
    broken = [f"{i.source}:{i.line} imports {i.target}" for i in all_imports() if breaks_rule(i)]
    assert not broken, "imports against the dependency rule:\n" + "\n".join(broken)


def test_no_import_circles() -> None:
    """No module reaches itself through its imports (function-local and dynamic ones included)."""
    assert cycles(all_imports()) == []


def test_function_local_imports_say_they_are_for_start_up_time() -> None:
    """A function-local import of a sentinel module has a `# start-up time:` comment above it."""
    missing = []
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for imp in _imports(name, path):
            if not imp.local:
                continue
            above = imp.line - 2
            while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                above -= 1  # a block of imports shares one comment
            if above < 0 or STARTUP_COMMENT not in lines[above]:
                missing.append(f"{name}:{imp.line} ({imp.target})")
    assert not missing, "function-local imports without a start-up reason:\n" + "\n".join(missing)


def test_the_rule_can_fail() -> None:
    """The checks see a violation and a circle when there is one (the rule is not vacuous)."""
    assert breaks_rule(Import("sentinel.core.model", "sentinel.hazards.store", 1, False))
    assert breaks_rule(Import("sentinel.hazards.store", "sentinel.tickets.payload", 1, False))
    assert breaks_rule(Import("sentinel.sources.host.health", "sentinel.sources.detectors.base", 1, False))
    assert breaks_rule(Import("sentinel.sources.parsers.procnet", "sentinel.sources.base", 1, True))
    assert not breaks_rule(Import("sentinel.cli.status", "sentinel.agent.lock", 1, False))
    circle = [Import("sentinel.a", "sentinel.b", 1, False), Import("sentinel.b", "sentinel.a", 1, True)]
    assert cycles(circle) == [["sentinel.a", "sentinel.b"]]


_COLLECTORS_AND_LIBRARIES = (
    "sentinel.sources",  # every collector (and the registry that imports them all)
    "sentinel.config.schema",  # the whole config: it builds [collectors.*] from the registry
    "prometheus_client",
    "structlog",
    "watchdog",
    "psutil",
)
_RUN = "from sentinel.cli.main import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
STARTS: dict[str, tuple[list[str] | None, tuple[str, ...]]] = {
    # what runs -> the modules it must not load
    "import": (None, (*_COLLECTORS_AND_LIBRARIES, "sentinel.hazards.store")),
    "help": (["--help"], (*_COLLECTORS_AND_LIBRARIES, "sentinel.hazards.store", "sentinel.core.model")),
    "status": (["status"], (*_COLLECTORS_AND_LIBRARIES, "sentinel.hazards.store", "sentinel.tickets")),
    "hazards list": (
        ["hazards", "list"],
        (*_COLLECTORS_AND_LIBRARIES, "sentinel.hazards.store", "sentinel.tickets", "sentinel.core.redact"),
    ),
}
"""The commands that must start fast (issue 23: within 6x the interpreter's own start)."""


@pytest.mark.parametrize("start", list(STARTS))
def test_the_cli_starts_without_the_heavy_parts(start: str, tmp_path: Path) -> None:
    """`import sentinel.cli` and `sentinel --help` load no collector, no store, no prometheus_client
    and no structlog; `status` and `hazards list` read only their config sections (no collector,
    no registry, no whole config) and load structlog only if something they use logs."""
    argv, forbidden = STARTS[start]
    config = tmp_path / "sentinel.toml"
    config.write_text(f'[agent]\nstate_dir = "{tmp_path / "state"}"\nbranch = "b"\n')
    code = "import sentinel.cli" if argv is None else _RUN.format(argv=[*argv, "--config", str(config)])
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.splitlines()
    loaded = [m for m in out if m.startswith(forbidden)]
    assert loaded == [], f"{start} loads {loaded}"
    if argv and argv[0] != "--help":
        assert any(line.startswith(("open hazards", "   ID")) for line in out)  # the command ran


def _reasoned(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return any(line.strip().startswith(SIZE_REASON) for line in doc.splitlines())


def test_no_module_over_500_lines_and_no_class_over_300() -> None:
    """Past the limits a module says why in its docstring (a line starting `Size:`)."""
    too_big = []
    for name, path in MODULES.items():
        if _reasoned(path):
            continue
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    too_big.append(f"{name}.{node.name}: {size} lines")
    assert not too_big, "\n".join(too_big)
