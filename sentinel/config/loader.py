"""The agent's configuration: one TOML file, its `conf.d/*.toml` drop-ins and `rules.d/*.toml`.

Loading order: `rules.d/*.toml` (name order), the main file, then `conf.d/*.toml` (name order).
Tables merge key by key, a later scalar replaces an earlier one, `[[sinks]]` lists append, and
`[[rules]]` merge by `name` (a later rule with the same name replaces the earlier one, so a branch
can tune or disable a shipped rule in a drop-in). Relative paths are relative to the file that
wrote them. Every error names its file and key path; `load()` raises ConfigError with all of them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.agent.schedule import ScheduleConfig
from sentinel.core.model import Category, Severity
from sentinel.core.settings import (
    Builder,
    Duration,
    KeyPath,
    field,
    format_path,
    frozen_map,
    non_empty,
    non_negative,
    positive,
)
from sentinel.inspect.config import InspectConfig
from sentinel.rules.text import matcher_error
from sentinel.sources.detectors.accounts import AccountsConfig
from sentinel.sources.detectors.auth import AuthConfig
from sentinel.sources.detectors.listeners import ListenersConfig
from sentinel.sources.detectors.outbound import OutboundConfig
from sentinel.sources.detectors.processes import ProcessesConfig
from sentinel.sources.detectors.usb import UsbConfig
from sentinel.sources.host.disks import DisksConfig
from sentinel.sources.host.drill_probe import DrillProbeConfig
from sentinel.sources.host.filesystems import FilesystemsConfig
from sentinel.sources.host.health import HealthConfig
from sentinel.sources.host.network import NetworkConfig
from sentinel.sources.host.sensors import SensorsConfig
from sentinel.sources.host.services import ServicesConfig
from sentinel.sources.host.timesync import TimesyncConfig
from sentinel.sources.integrity.config import IntegrityConfig
from sentinel.tickets.config import SinkConfig

DEFAULT_CONFIG = Path("/etc/sentinel/sentinel.toml")
CONFIG_ENV = "SENTINEL_CONFIG"
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ConfigError(Exception):
    """The config could not be loaded; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def check_listen(value: str) -> str | None:
    """Check: `host:port` or `[v6]:port` with a port from 0 to 65535."""
    match = _LISTEN.match(value)
    if not match or int(match.group("port")) > 65535:
        return f'expected "host:port" like "127.0.0.1:9787", got "{value}"'
    return None


def check_name(value: str) -> str | None:
    """Check: a lower-case identifier usable as a label value and a key."""
    if _NAME.match(value):
        return None
    return f'expected a lower-case name like "disk_full" (a-z, 0-9, _), got "{value}"'


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """`[agent]`: identity of the terminal and where the agent keeps its state."""

    state_dir: Path
    branch: str = field(check=non_empty)
    terminal_id: str = field(default_factory=socket.gethostname, check=non_empty)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    queue_size: int = field(10_000, check=positive)
    rules_dir: Path | None = None
    collector_timeout: Duration = field(Duration(60), check=positive)
    status_interval: Duration = field(Duration(5), check=positive)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """`[metrics]`: the /metrics endpoint. Loopback unless configured otherwise."""

    listen: str = field("127.0.0.1:9787", check=check_listen)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    open_hazards_info_limit: int = field(50, check=non_negative)

    @property
    def host(self) -> str:
        """The address to bind (without brackets for IPv6)."""
        match = _LISTEN.match(self.listen)
        assert match is not None  # checked at load
        return match.group("v6") or match.group("host")

    @property
    def port(self) -> int:
        """The port to bind (0 picks a free one)."""
        return int(self.listen.rsplit(":", 1)[1])

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Cert and key come together; a client CA needs TLS."""
        problems: list[tuple[KeyPath, str]] = []
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            problems.append((("tls_key_file",), "tls_cert_file and tls_key_file go together"))
        if self.client_ca_file and not self.tls_cert_file:
            problems.append((("client_ca_file",), "needs tls_cert_file and tls_key_file"))
        return problems


def _severity_levels(value: Mapping[str, float]) -> str | None:
    bad = [k for k in value if k not in {s.value for s in Severity}]
    if bad:
        return f"unknown severity {bad[0]!r} (use info, minor, major, critical)"
    return None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One `[[rules]]` entry: a threshold rule (`metric`) or an event rule (`event`)."""

    category: Category
    name: str = field(check=check_name)
    title: str = ""
    enabled: bool = True
    # threshold form
    metric: str = ""
    match: Mapping[str, str] = field(default_factory=frozen_map)
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float | None = None
    levels: Mapping[str, float] = field(default_factory=frozen_map, check=_severity_levels)
    clear: float | None = None
    for_: Duration = field(Duration(0), key="for")
    keep_firing_for: Duration = Duration(0)
    predict: Duration | None = None
    window: Duration = field(Duration(0), check=non_negative)
    # per severity, the metric (same labels, same collector) its level is an offset from
    relative_to: Mapping[str, str] = field(default_factory=frozen_map, check=_severity_levels)
    subject: str = ""
    # event form
    event: str = ""
    where: Mapping[str, str] = field(default_factory=frozen_map)
    count: int = field(1, check=positive)
    group_by: tuple[str, ...] = ("subject",)
    mute: Duration = Duration(0)
    # the hazard it raises
    severity: Severity | None = None
    auto_resolve: bool | None = None
    rectification: tuple[str, ...] = ()
    deadline: Duration | None = None
    owner: str = ""
    drill: bool = False  # hazards it raises are drills (routed away from on-call, auto-closed)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """A rule is exactly one of the two forms, with what that form needs."""
        problems = self._matcher_problems()
        if bool(self.metric) == bool(self.event):
            problems.append(((), 'needs exactly one of "metric" (threshold) or "event"'))
            return problems
        if self.metric:
            if self.threshold is None and not self.levels:
                problems.append((("threshold",), 'needs "threshold" and "severity", or "levels"'))
            if self.threshold is not None and self.levels:
                problems.append((("levels",), 'use either "threshold" or "levels", not both'))
            if self.threshold is not None and self.severity is None:
                problems.append((("severity",), 'a "threshold" needs a "severity"'))
            if self.predict is not None and self.window <= 0:
                problems.append((("window",), '"predict" needs a "window" to fit over'))
            if self.relative_to and set(self.relative_to) != {s.value for s in self.severity_levels}:
                problems.append((("relative_to",), "needs one reference metric for each severity level"))
            if self.relative_to and self.predict is not None:
                problems.append((("relative_to",), 'cannot be combined with "predict"'))
        else:
            if self.severity is None:
                problems.append((("severity",), "required key is missing"))
            if self.count > 1 and self.window <= 0:
                problems.append((("window",), f'"count = {self.count}" needs a "window"'))
        return problems

    def _matcher_problems(self) -> list[tuple[KeyPath, str]]:
        """Regex matchers are compiled at load, so a typo fails here and not at the first event."""
        problems: list[tuple[KeyPath, str]] = []
        for table in ("match", "where"):
            for key, pattern in getattr(self, table).items():
                problem = matcher_error(pattern)
                if problem:
                    problems.append(((table, key), problem))
        return problems

    @property
    def severity_levels(self) -> dict[Severity, float]:
        """Threshold per severity, whichever way the rule spelt it."""
        if self.levels:
            return {Severity(k): v for k, v in self.levels.items()}
        if self.threshold is not None and self.severity is not None:
            return {self.severity: self.threshold}
        return {}

    @property
    def resolves_automatically(self) -> bool:
        """Threshold hazards resolve when the condition clears; event hazards by default do not."""
        if self.auto_resolve is not None:
            return self.auto_resolve
        return bool(self.metric)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One `[[hazards.routes]]` entry: who owns the hazards it matches (first match wins)."""

    owner: str = field(check=non_empty)
    categories: tuple[Category, ...] = ()
    severities: tuple[Severity, ...] = ()
    rules: tuple[str, ...] = ()


def _default_sla() -> Mapping[str, Duration]:
    return types.MappingProxyType(
        {
            "critical": Duration(4 * 3600),
            "major": Duration(24 * 3600),
            "minor": Duration(7 * 86400),
        }
    )


@dataclass(frozen=True, slots=True)
class HazardsConfig:
    """`[hazards]`: ownership, deadlines, escalation, recurrence and retention."""

    default_owner: str = field("branch-it", check=non_empty)
    routes: tuple[RouteConfig, ...] = ()
    sla: Mapping[str, Duration] = field(default_factory=_default_sla, check=_severity_levels)
    escalation_chain: tuple[str, ...] = ("terminal", "branch", "primary_branch", "head_office")
    escalation_interval: Duration | None = None
    recurrence_count: int = field(3, check=positive)
    recurrence_window: Duration = field(Duration(30 * 86400), check=positive)
    evidence_keep: int = field(20, check=positive)
    retention: Duration = field(Duration(365 * 86400), check=positive)
    check_interval: Duration = field(Duration(30), check=positive)


@dataclass(frozen=True, slots=True)
class CollectorsConfig:
    """`[collectors.*]`: one table per collector."""

    health: HealthConfig = field(default_factory=HealthConfig)
    filesystems: FilesystemsConfig = field(default_factory=FilesystemsConfig)
    disks: DisksConfig = field(default_factory=DisksConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    services: ServicesConfig = field(default_factory=ServicesConfig)
    timesync: TimesyncConfig = field(default_factory=TimesyncConfig)
    drill_probe: DrillProbeConfig = field(default_factory=DrillProbeConfig)
    # suspicious-event detectors (docs/detectors.md)
    auth: AuthConfig = field(default_factory=AuthConfig)
    usb: UsbConfig = field(default_factory=UsbConfig)
    listeners: ListenersConfig = field(default_factory=ListenersConfig)
    processes: ProcessesConfig = field(default_factory=ProcessesConfig)
    outbound: OutboundConfig = field(default_factory=OutboundConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole, validated configuration."""

    agent: AgentConfig
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    hazards: HazardsConfig = field(default_factory=HazardsConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    rules: tuple[RuleConfig, ...] = ()
    inspect: InspectConfig = field(default_factory=InspectConfig)
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    schedules: tuple[ScheduleConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)

    @property
    def enabled_rules(self) -> tuple[RuleConfig, ...]:
        """The rules that are switched on."""
        return tuple(r for r in self.rules if r.enabled)

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Names that others refer to must be unique."""
        problems: list[tuple[KeyPath, str]] = []
        for section, names in (
            ("sinks", [s.name for s in self.sinks]),
            ("schedules", [s.name for s in self.schedules]),
        ):
            seen: set[str] = set()
            for i, name in enumerate(names):
                if name in seen:
                    problems.append(((section, i, "name"), f'another entry is already named "{name}"'))
                seen.add(name)
        return problems


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The config file to use: --config, else $SENTINEL_CONFIG, else /etc/sentinel/sentinel.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG


class _Origins:
    """Which file set which key path, so an error can say `conf.d/10.toml: rules[0].for`."""

    def __init__(self) -> None:
        self.files: dict[KeyPath, tuple[Path, KeyPath]] = {}

    def note(self, path: KeyPath, file: Path, shown: KeyPath) -> None:
        self.files[path] = (file, shown)

    def locate(self, path: KeyPath, default: Path) -> tuple[Path, KeyPath]:
        for cut in range(len(path), -1, -1):
            found = self.files.get(path[:cut])
            if found:
                file, shown = found
                return file, (*shown, *path[cut:])
        return default, path


def _read_toml(path: Path, errors: list[str]) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        errors.append(f"{path}: cannot read: no such file")
    except PermissionError:
        errors.append(f"{path}: cannot read: permission denied")
    except IsADirectoryError:
        errors.append(f"{path}: cannot read: is a directory")
    except OSError as exc:
        errors.append(f"{path}: cannot read: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        errors.append(f"{path}: invalid TOML: {exc}")
    except UnicodeDecodeError as exc:
        errors.append(f"{path}: invalid TOML: not UTF-8 ({exc.reason} at byte {exc.start})")
    return None


def _merge(
    target: dict[str, Any], data: dict[str, Any], file: Path, origins: _Origins, path: KeyPath
) -> None:
    for key, value in data.items():
        here = (*path, key)
        if path == () and key == "rules" and isinstance(value, list):
            _merge_rules(target, value, file, origins)
        elif path == () and key == "sinks" and isinstance(value, list):
            start = len(target.setdefault("sinks", []))
            target["sinks"].extend(value)
            for i in range(len(value)):
                origins.note(("sinks", start + i), file, ("sinks", i))
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, file, origins, here)
        else:
            target[key] = value
            origins.note(here, file, here)
        if isinstance(value, dict) and here not in origins.files:
            origins.note(here, file, here)


def _merge_rules(target: dict[str, Any], rules: list[Any], file: Path, origins: _Origins) -> None:
    merged: list[Any] = target.setdefault("rules", [])
    for i, rule in enumerate(rules):
        name = rule.get("name") if isinstance(rule, dict) else None
        slot = next(
            (j for j, r in enumerate(merged) if isinstance(r, dict) and name and r.get("name") == name),
            None,
        )
        if slot is None:
            slot = len(merged)
            merged.append(rule)
        else:
            merged[slot] = rule
        origins.note(("rules", slot), file, ("rules", i))


def _drop_ins(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob("*.toml") if p.is_file())


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load, merge and validate the config; raise ConfigError listing every problem."""
    main = config_path(path)
    errors: list[str] = []
    origins = _Origins()
    merged: dict[str, Any] = {}
    main_data = _read_toml(main, errors)
    if main_data is None:
        raise ConfigError(errors)
    layers = [(main, main_data)]
    for drop_in in _drop_ins(main.parent / "conf.d"):
        data = _read_toml(drop_in, errors)
        if data is not None:
            layers.append((drop_in, data))
    rules_dir = _rules_dir(layers, main.parent)
    for rules_file in _drop_ins(rules_dir):
        data = _read_toml(rules_file, errors)
        if data is None:
            continue
        extra = sorted(set(data) - {"rules"})
        if extra:
            errors.append(f"{rules_file}: {extra[0]}: unknown key (a rules file holds only [[rules]])")
        _merge(merged, {"rules": data.get("rules", [])}, rules_file, origins, ())
    for file, data in layers:
        _merge(merged, data, file, origins, ())

    def base_dir(key: KeyPath) -> Path:
        return origins.locate(key, main)[0].parent.resolve()

    builder = Builder(base_dir)
    config = builder.build(Config, merged, ())
    for key, message in builder.errors:
        file, shown = origins.locate(key, main)
        where = format_path(shown)
        errors.append(f"{file}: {where}: {message}" if where else f"{file}: {message}")
    if errors or config is None:
        raise ConfigError(errors or [f"{main}: invalid configuration"])
    return dataclasses.replace(config, source=main.resolve())


def _rules_dir(layers: list[tuple[Path, dict[str, Any]]], default_base: Path) -> Path:
    chosen, base = "rules.d", default_base
    for file, data in layers:
        agent = data.get("agent")
        if isinstance(agent, dict) and isinstance(agent.get("rules_dir"), str):
            chosen, base = agent["rules_dir"], file.parent
    candidate = Path(chosen).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
