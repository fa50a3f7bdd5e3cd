"""The organisation: terminal → branch → primary branch → head office, from an inventory file.

The inventory is the bank's, and the same facts Prometheus relabelling uses (deploy/prometheus,
docs/fleet.md): either written out in TOML, or read straight from the Prometheus `file_sd` target
files (`targets: ["teller-01.b0101.bank.example:9787"]`, `labels: {branch: "0101", region: "east"}`;
the terminal is the first DNS label, as the relabel rule takes it), or both (TOML names and
intervals win). Example (config/hub-inventory.toml):

    [head_office]
    id = "HO"
    name = "Head office"

    [[primary_branches]]
    id = "east"
    name = "East primary branch"

    [[branches]]
    id = "0101"
    name = "Riverside branch"
    primary = "east"
    silent_after = "10m"        # optional: when a quiet terminal here counts as silent

    [[terminals]]
    name = "teller-01"
    branch = "0101"

    [file_sd]
    files = ["/etc/prometheus/sentinel/targets/*.yml"]
    branch_label = "branch"
    primary_label = "region"

Every error names the file and the entry; a terminal in two branches is an error.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.core.settings import Builder, Duration, field, format_path, non_empty
from sentinel.core.tomlread import TomlFileError, read_toml_file
from sentinel.hub.bounds import inventory_bounds

Kind = Literal["head_office", "primary_branch", "branch"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TARGET_HOST = re.compile(r"^([^.:\[\]]+)")  # the relabel rule's "([^.:]+).*"


class InventoryError(Exception):
    """The inventory cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _name(value: str) -> str | None:
    if _NAME.match(value):
        return None
    return f'expected a name of letters, digits, ".", "_" or "-" (at most 128), got "{value}"'


@dataclass(frozen=True, slots=True)
class OrgUnit:
    """One node of the organisation."""

    id: str
    kind: Kind
    name: str
    parent_id: str | None


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    """Where one terminal belongs, and when it counts as silent (None: the hub's default)."""

    name: str
    branch_id: str
    primary_id: str
    silent_after: float | None = None


@dataclass(frozen=True, slots=True)
class _HeadOffice:
    id: str = field("HO", check=_name)
    name: str = field("Head office", check=non_empty)


@dataclass(frozen=True, slots=True)
class _Primary:
    id: str = field(check=_name)
    name: str = ""


@dataclass(frozen=True, slots=True)
class _Branch:
    id: str = field(check=_name)
    primary: str = field(check=_name)
    name: str = ""
    silent_after: Duration | None = None


@dataclass(frozen=True, slots=True)
class _Terminal:
    name: str = field(check=_name)
    branch: str = field(check=_name)
    silent_after: Duration | None = None


@dataclass(frozen=True, slots=True)
class _FileSd:
    files: tuple[str, ...] = ()
    branch_label: str = "branch"
    primary_label: str = "region"


@dataclass(frozen=True, slots=True)
class InventoryFile:
    """The inventory file as written (checked by the settings Builder, ranges in hub/bounds.py)."""

    head_office: _HeadOffice = dataclasses.field(default_factory=_HeadOffice)
    primary_branches: tuple[_Primary, ...] = ()
    branches: tuple[_Branch, ...] = ()
    terminals: tuple[_Terminal, ...] = ()
    file_sd: _FileSd = dataclasses.field(default_factory=_FileSd)


class Inventory:
    """The organisation tree and every terminal's place in it."""

    def __init__(
        self,
        head_office: OrgUnit,
        units: Iterable[OrgUnit],
        terminals: Iterable[TerminalInfo],
        *,
        source: Path | None = None,
    ) -> None:
        self.head_office = head_office
        self.units: dict[str, OrgUnit] = {head_office.id: head_office}
        for unit in units:
            self.units[unit.id] = unit
        self.terminals: dict[str, TerminalInfo] = {t.name: t for t in terminals}
        self.source = source

    # -- questions the hub asks ---------------------------------------------------------------

    def terminal(self, name: str) -> TerminalInfo | None:
        """Where `name` belongs, or None for a terminal the inventory does not know."""
        return self.terminals.get(name)

    def unit(self, unit_id: str) -> OrgUnit | None:
        """The unit with this id."""
        return self.units.get(unit_id)

    def children(self, unit_id: str) -> list[OrgUnit]:
        """The units directly under `unit_id`, by id."""
        return sorted((u for u in self.units.values() if u.parent_id == unit_id), key=lambda u: u.id)

    def path(self, unit_id: str) -> list[OrgUnit]:
        """From the head office down to `unit_id` (empty if unknown)."""
        out: list[OrgUnit] = []
        unit = self.units.get(unit_id)
        while unit is not None:
            out.insert(0, unit)
            unit = self.units.get(unit.parent_id) if unit.parent_id else None
        return out

    def contains(self, ancestor_id: str, unit_id: str) -> bool:
        """Whether `unit_id` is `ancestor_id` or lies under it (for roles per org unit)."""
        return any(u.id == ancestor_id for u in self.path(unit_id))

    def terminals_in(self, unit_id: str) -> list[TerminalInfo]:
        """The terminals under a unit, by name."""
        unit = self.units.get(unit_id)
        if unit is None:
            return []
        return sorted(
            (
                t
                for t in self.terminals.values()
                if unit.kind == "head_office"
                or (unit.kind == "primary_branch" and t.primary_id == unit.id)
                or (unit.kind == "branch" and t.branch_id == unit.id)
            ),
            key=lambda t: t.name,
        )

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> Inventory:
        """Read the inventory file (and the file_sd files it names); InventoryError lists problems."""
        try:
            data = read_toml_file(path)
        except TomlFileError as exc:
            raise InventoryError([str(exc)]) from None
        return cls.from_data(data, source=path)

    @classmethod
    def from_data(cls, data: dict[str, Any], *, source: Path | None = None) -> Inventory:
        """Build from parsed TOML."""
        where = f"{source}: " if source else ""
        base = source.parent if source else Path.cwd()
        builder = Builder(lambda _p: base, inventory_bounds)
        parsed = builder.build(InventoryFile, data, ())
        if builder.errors or parsed is None:
            raise InventoryError([f"{where}{format_path(p)}: {m}" for p, m in builder.errors])
        return _assemble(parsed, base, where, source)


def _assemble(  # noqa: PLR0912 - one pass over the file's sections, each with its own errors
    parsed: InventoryFile, base: Path, where: str, source: Path | None
) -> Inventory:
    problems: list[str] = []
    head = OrgUnit(parsed.head_office.id, "head_office", parsed.head_office.name, None)
    primaries: dict[str, OrgUnit] = {}
    for i, p in enumerate(parsed.primary_branches):
        if p.id in primaries or p.id == head.id:
            problems.append(f"{where}primary_branches[{i}].id: {p.id!r} is used twice")
        primaries[p.id] = OrgUnit(p.id, "primary_branch", p.name or p.id, head.id)
    branches: dict[str, OrgUnit] = {}
    branch_silence: dict[str, float | None] = {}
    for i, b in enumerate(parsed.branches):
        if b.id in branches or b.id in primaries or b.id == head.id:
            problems.append(f"{where}branches[{i}].id: {b.id!r} is used twice")
        if b.primary not in primaries:
            problems.append(f"{where}branches[{i}].primary: no primary branch {b.primary!r}")
        branches[b.id] = OrgUnit(b.id, "branch", b.name or b.id, b.primary)
        branch_silence[b.id] = b.silent_after
    terminals: dict[str, TerminalInfo] = {}
    for i, t in enumerate(parsed.terminals):
        if t.name in terminals:
            problems.append(f"{where}terminals[{i}].name: {t.name!r} is listed twice")
        unit = branches.get(t.branch)
        if unit is None:
            problems.append(f"{where}terminals[{i}].branch: no branch {t.branch!r}")
            continue
        silence = t.silent_after or branch_silence.get(t.branch)
        terminals[t.name] = TerminalInfo(t.name, t.branch, unit.parent_id or head.id, silence)
    # Prometheus file_sd targets: the terminals (and branches) the scrape config knows
    sd = parsed.file_sd
    for pattern in sd.files:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        for name in sorted(glob.glob(full)):  # noqa: PTH207 - patterns are absolute or relative to the file
            for target, labels in _read_file_sd(Path(name), problems):
                host = _TARGET_HOST.match(target)
                branch_id = labels.get(sd.branch_label, "")
                primary_id = labels.get(sd.primary_label, "")
                if not host or _name(host.group(1)) or not branch_id or _name(branch_id):
                    problems.append(
                        f"{name}: target {target!r}: needs a host name and a {sd.branch_label} label"
                    )
                    continue
                terminal = host.group(1)
                if branch_id not in branches:
                    if not primary_id or _name(primary_id):
                        problems.append(
                            f"{name}: target {target!r}: branch {branch_id!r} is not in the "
                            f"inventory and has no {sd.primary_label} label"
                        )
                        continue
                    primaries.setdefault(
                        primary_id, OrgUnit(primary_id, "primary_branch", primary_id, head.id)
                    )
                    branches[branch_id] = OrgUnit(branch_id, "branch", branch_id, primary_id)
                known = terminals.get(terminal)
                if known is not None and known.branch_id != branch_id:
                    problems.append(
                        f"{name}: terminal {terminal!r} is in branch {branch_id!r} here and in "
                        f"{known.branch_id!r} elsewhere"
                    )
                    continue
                if known is None:
                    parent = branches[branch_id].parent_id or head.id
                    terminals[terminal] = TerminalInfo(
                        terminal, branch_id, parent, branch_silence.get(branch_id)
                    )
    if problems:
        raise InventoryError(problems)
    return Inventory(head, [*primaries.values(), *branches.values()], terminals.values(), source=source)


def _read_file_sd(path: Path, problems: list[str]) -> list[tuple[str, dict[str, str]]]:
    """(target, labels) pairs of one file_sd file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror or exc}")
        return []
    try:
        if path.suffix == ".json":
            groups = json.loads(text)
        else:
            import yaml  # only when the inventory uses file_sd YAML (the hub extra has it)

            try:
                groups = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(str(exc).replace("\n", " ")) from None
    except ValueError as exc:
        problems.append(f"{path}: cannot parse: {exc}")
        return []
    except RecursionError:  # a hostile nesting: still one line
        problems.append(f"{path}: cannot parse: nested too deeply")
        return []
    if groups is None:
        return []
    if not isinstance(groups, list):
        problems.append(f"{path}: expected a list of target groups")
        return []
    out: list[tuple[str, dict[str, str]]] = []
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("targets", []), list):
            problems.append(f"{path}: a target group needs a targets list")
            continue
        labels = {str(k): str(v) for k, v in (group.get("labels") or {}).items()}
        out += [(str(t), labels) for t in group.get("targets", [])]
    return out
