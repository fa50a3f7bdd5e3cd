"""Posture checks in a small declarative format, in the spirit of Wazuh SCA and CIS benchmarks.

A check file (`checks.d/*.toml`) holds `[[checks]]` tables. Each check has an id, a title, a
category and severity (for the hazard a failure may raise), a remediation, and one *test*:

- `type = "setting"`: a `key value` / `key=value` setting in config files (`paths`, globs; the last
  occurrence wins, as sshd and most daemons read them); `expect` is a matcher on the value;
  `default` is the value when the key is absent (the program's built-in default).
- `type = "lines"`: lines of files (`paths`, globs) matching regex `pattern`; `expect = "present"`
  passes when some line matches, `"absent"` when none does. With `separator` and `field`, the
  pattern is applied to that field of each line (e.g. /etc/shadow's password field).
- `type = "command"`: runs `argv` (never a shell) with a timeout; `expect` is a matcher on its
  stripped stdout, or `expect_exit` on its exit code; `extract` (a regex with one group) picks
  the value out of the output first. `missing = "skip"` when the program is not installed.
- `type = "files"`: walks `paths` (not crossing filesystems) for files whose mode has any of
  `mode_any` bits (octal string, e.g. "0002" world-writable, "6000" setuid/setgid); fails when a
  found file is not matched by an `allow` glob. Bounded by `max_files` so it never runs away.
- `any = [ {...}, {...} ]`: passes when any of the sub-tests passes (chrony OR timesyncd OR ntpd).

Matchers are those of rules (`"x"`, `"!x"`, `"~regex"`, `"!~regex"`) plus numeric comparisons
`"<= 2.5"`, `"> 0"`. Every filesystem path is read under `root` so tests feed fixture trees.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.core.model import Category, Severity
from sentinel.rules.text import matches

Outcome = Literal["pass", "fail", "skip", "error"]
_NUMERIC = re.compile(r"^\s*(<=|>=|<|>|==|!=)\s*(-?\d+(?:\.\d+)?)\s*$")
CommandRunner = Callable[[Sequence[str], float], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check found."""

    id: str
    title: str
    outcome: Outcome
    detail: str
    remediation: str
    category: Category
    severity: Severity
    raise_hazard: bool = True


@dataclass(frozen=True, slots=True)
class Check:
    """One declarative check (validated from TOML by `parse_checks`)."""

    id: str
    title: str
    category: Category
    severity: Severity
    remediation: str
    test: Mapping[str, Any]
    raise_hazard: bool = True
    source: str = ""


def value_matches(expect: str, value: str) -> bool:
    """Rule matchers plus numeric comparisons like "<= 2.5"."""
    numeric = _NUMERIC.match(expect)
    if numeric:
        try:
            number = float(value)
        except ValueError:
            return False
        limit = float(numeric.group(2))
        return {
            "<=": number <= limit,
            ">=": number >= limit,
            "<": number < limit,
            ">": number > limit,
            "==": number == limit,
            "!=": number != limit,
        }[numeric.group(1)]
    return matches(expect, value)


def run_command(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run argv without a shell; (exit code, stdout). FileNotFoundError when not installed."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    # argv comes from the operator's check files and is run without a shell
    proc = subprocess.run(  # noqa: S603
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, errors="replace", env=env
    )
    return proc.returncode, proc.stdout


class Evaluator:
    """Runs checks against a filesystem root and a command runner (both injectable)."""

    def __init__(
        self, *, root: Path = Path("/"), run: CommandRunner = run_command, timeout: float = 20.0
    ) -> None:
        self.root = root
        self.run = run
        self.timeout = timeout

    def evaluate(self, check: Check) -> CheckResult:
        """Run one check; an unexpected error is an `error` outcome, never an exception."""
        try:
            outcome, detail = self._test(check.test)
        except PermissionError as exc:  # run without root: a result that says so, not a traceback
            shown = self._shown(Path(exc.filename)) if exc.filename else "a file it needs"
            outcome, detail = "error", f"not checked: {shown} is not readable by this account (run as root)"
        except Exception as exc:  # a broken check must not stop the inspection
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        return CheckResult(
            check.id,
            check.title,
            outcome,
            detail,
            check.remediation,
            check.category,
            check.severity,
            check.raise_hazard,
        )

    def _test(self, test: Mapping[str, Any]) -> tuple[Outcome, str]:
        if "any" in test:
            details = []
            for sub in test["any"]:
                outcome, detail = self._test(sub)
                if outcome == "pass":
                    return "pass", detail
                details.append(detail)
            return "fail", "; ".join(details)
        kind = test["type"]
        if kind == "setting":
            return self._setting(test)
        if kind == "lines":
            return self._lines(test)
        if kind == "command":
            return self._command(test)
        if kind == "files":
            return self._files(test)
        raise ValueError(f"unknown check type {kind!r}")

    # -- files under root ---------------------------------------------------------------------

    def _paths(self, patterns: Sequence[str]) -> list[Path]:
        found: list[Path] = []
        for pattern in patterns:
            found += sorted(p for p in self.root.glob(pattern.lstrip("/")) if p.is_file())
        return found

    def _shown(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)

    def _missing(self, test: Mapping[str, Any], what: str) -> tuple[Outcome, str]:
        outcome: Outcome = test.get("missing", "skip")
        return outcome, f"{what} not found"

    def _setting(self, test: Mapping[str, Any]) -> tuple[Outcome, str]:
        files = self._paths(test["paths"])
        if not files:
            return self._missing(test, " ".join(test["paths"]))
        key = str(test["key"]).lower()
        value: str | None = None
        where = ""
        for path in files:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                parts = re.split(r"\s*=\s*|\s+", text, maxsplit=1)
                if parts[0].lower() == key and len(parts) == 2:
                    if test.get("first_wins", True) and value is not None:
                        continue  # sshd uses the first value it reads
                    value, where = parts[1].strip().strip('"'), self._shown(path)
        if value is None:
            value, where = str(test.get("default", "")), "default"
        ok = value_matches(str(test["expect"]), value)
        return ("pass" if ok else "fail"), f"{test['key']} = {value!r} ({where})"

    def _lines(self, test: Mapping[str, Any]) -> tuple[Outcome, str]:
        files = self._paths(test["paths"])
        if not files:
            return self._missing(test, " ".join(test["paths"]))
        pattern = re.compile(test["pattern"])
        separator, field_index = test.get("separator"), test.get("field")
        hits: list[str] = []
        for path in files:
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.lstrip().startswith("#"):
                    continue
                target = line
                if separator is not None and field_index is not None:
                    fields = line.split(separator)
                    if len(fields) <= field_index:
                        continue
                    target = fields[field_index]
                if pattern.search(target):
                    hits.append(f"{self._shown(path)}: {_key_of(line, separator)}")
        present = bool(hits)
        want_present = test.get("expect", "present") == "present"
        ok = present == want_present
        if present:
            shown = ", ".join(hits[:5]) + (f" (+{len(hits) - 5} more)" if len(hits) > 5 else "")
            return ("pass" if ok else "fail"), f"found: {shown}"
        return ("pass" if ok else "fail"), f"no line matches /{test['pattern']}/"

    def _files(self, test: Mapping[str, Any]) -> tuple[Outcome, str]:
        bits = int(str(test["mode_any"]), 8)
        allow: list[str] = list(test.get("allow", []))
        limit = int(test.get("max_files", 200_000))
        bad: list[str] = []
        seen = 0
        for top in test["paths"]:
            base = self.root / top.lstrip("/")
            if not base.exists():
                continue
            device = base.stat().st_dev
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if _same_device(Path(dirpath) / d, device)]
                for name in filenames:
                    seen += 1
                    if seen > limit:
                        return "error", f"stopped after {limit} files (raise max_files)"
                    full = Path(dirpath) / name
                    try:
                        st = full.lstat()
                    except OSError:
                        continue
                    if stat.S_ISREG(st.st_mode) and st.st_mode & bits:
                        shown = self._shown(full)
                        if not any(fnmatch.fnmatchcase(shown, a) for a in allow):
                            bad.append(shown)
        if bad:
            listed = ", ".join(sorted(bad)[:10]) + (f" (+{len(bad) - 10} more)" if len(bad) > 10 else "")
            return "fail", f"{len(bad)} file(s): {listed}"
        return "pass", f"none among {seen} files"

    # -- commands -----------------------------------------------------------------------------

    def _command(self, test: Mapping[str, Any]) -> tuple[Outcome, str]:
        argv = [str(a) for a in test["argv"]]
        try:
            code, out = self.run(argv, float(test.get("timeout", self.timeout)))
        except FileNotFoundError:
            return self._missing(test, argv[0])
        except PermissionError:  # not executable by this account (or a PATH entry it cannot search)
            return "error", f"not checked: {argv[0]} cannot be run by this account (run as root)"
        except subprocess.TimeoutExpired:
            return "error", f"{argv[0]} did not answer within {test.get('timeout', self.timeout)}s"
        if "expect_exit" in test:
            ok = code == int(test["expect_exit"])
            return ("pass" if ok else "fail"), f"{' '.join(argv)} exited {code}"
        value = out.strip()
        if "extract" in test:
            found = re.search(test["extract"], out, re.MULTILINE)
            if not found:
                return "fail", f"{' '.join(argv)} exited {code} without /{test['extract']}/ in its output"
            value = found.group(1)
        ok = value_matches(str(test["expect"]), value)
        return ("pass" if ok else "fail"), f"{' '.join(argv)} -> {value[:200]!r}"


def _same_device(path: Path, device: int) -> bool:
    try:
        return path.lstat().st_dev == device and not path.is_symlink()
    except OSError:
        return False


def _key_of(line: str, separator: str | None) -> str:
    """What to show of a matching line: its first field (never a password hash)."""
    if separator:
        return line.split(separator, 1)[0]
    return line.strip()[:120]


_TEST_KEYS = {
    "setting": {"type", "paths", "key", "expect", "default", "missing", "first_wins"},
    "lines": {"type", "paths", "pattern", "expect", "separator", "field", "missing"},
    "command": {"type", "argv", "expect", "expect_exit", "extract", "timeout", "missing"},
    "files": {"type", "paths", "mode_any", "allow", "max_files"},
}
_REQUIRED = {
    "setting": {"paths", "key", "expect"},
    "lines": {"paths", "pattern"},
    "command": {"argv"},
    "files": {"paths", "mode_any"},
}


def validate_test(test: Any, where: str) -> list[str]:
    """Problems with one test table, each naming where it is."""
    if not isinstance(test, dict):
        return [f"{where}: expected a table"]
    if "any" in test:
        subs = test["any"]
        if set(test) != {"any"} or not isinstance(subs, list) or not subs:
            return [f"{where}.any: expected a non-empty list of tests and nothing else"]
        return [p for i, sub in enumerate(subs) for p in validate_test(sub, f"{where}.any[{i}]")]
    kind = test.get("type")
    if kind not in _TEST_KEYS:
        return [f"{where}.type: expected one of {', '.join(sorted(_TEST_KEYS))}, got {kind!r}"]
    problems = [f"{where}.{k}: unknown key for a {kind} test" for k in sorted(set(test) - _TEST_KEYS[kind])]
    problems += [f"{where}.{k}: required key is missing" for k in sorted(_REQUIRED[kind] - set(test))]
    if kind == "command" and "expect" not in test and "expect_exit" not in test:
        problems.append(f"{where}: a command test needs expect or expect_exit")
    for key in ("pattern", "extract"):
        if key in test:
            try:
                re.compile(test[key])
            except (re.error, TypeError) as exc:
                problems.append(f"{where}.{key}: invalid regular expression: {exc}")
    if test.get("missing", "skip") not in ("skip", "pass", "fail"):
        problems.append(f'{where}.missing: expected "skip", "pass" or "fail"')
    return problems
