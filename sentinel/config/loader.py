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
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sentinel.config.bounds import bounds
from sentinel.config.sections import DEFAULT_CONFIG
from sentinel.core.settings import Builder, KeyPath, format_path
from sentinel.core.tomlread import TooDeep, parse_toml

if TYPE_CHECKING:
    from sentinel.config.schema import Config

T = TypeVar("T")

CONFIG_ENV = "SENTINEL_CONFIG"


class ConfigError(Exception):
    """The config could not be loaded; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


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
            return parse_toml(fh.read())
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
    except TooDeep as exc:
        errors.append(f"{path}: invalid TOML: {exc}")
    except RecursionError:  # a nesting the bounds above did not foresee: still one line
        errors.append(f"{path}: invalid TOML: nested too deeply")
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
    """Load, merge and validate the whole config; raise ConfigError listing every problem."""
    # start-up time: the whole schema imports every collector (the registry); load_part does not
    from sentinel.config.schema import Config

    return _load(path, Config, whole=True)


def load_part(path: str | os.PathLike[str] | None, part: type[T]) -> T:
    """Load and validate only the sections `part` has (a sentinel.config.views dataclass): the
    same files, merge and errors as load(), the other sections neither built nor checked."""
    return _load(path, part, whole=False)


def _load(path: str | os.PathLike[str] | None, schema: type[T], *, whole: bool) -> T:
    wanted = {f.name for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
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
    for rules_file in _drop_ins(rules_dir) if "rules" in wanted else ():
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

    if not whole:
        merged = {k: v for k, v in merged.items() if k in wanted}
    builder = Builder(base_dir, bounds)
    config = builder.build(schema, merged, ())
    for key, message in builder.errors:
        file, shown = origins.locate(key, main)
        where = format_path(shown)
        errors.append(f"{file}: {where}: {message}" if where else f"{file}: {message}")
    if errors or config is None:
        raise ConfigError(errors or [f"{main}: invalid configuration"])
    return dataclasses.replace(config, source=main.resolve())  # type: ignore[type-var]


def _rules_dir(layers: list[tuple[Path, dict[str, Any]]], default_base: Path) -> Path:
    chosen, base = "rules.d", default_base
    for file, data in layers:
        agent = data.get("agent")
        if isinstance(agent, dict) and isinstance(agent.get("rules_dir"), str):
            chosen, base = agent["rules_dir"], file.parent
    candidate = Path(chosen).expanduser()
    return candidate if candidate.is_absolute() else base / candidate
