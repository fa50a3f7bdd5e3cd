"""The drill scenarios. Each is harmless: it touches only drill-owned files and probes.

- `threshold`: raises the drill probe gauge so the `drill_threshold` rule fires.
- `brute_force`: appends failed SSH logins from a TEST-NET-3 documentation address to
  `state_dir/drill/auth.log`, which the auth detector reads as drill events; the real
  brute-force rule (`login_bruteforce` as shipped) must raise the hazard.
- `file_change`: rewrites `drill-probe.txt` in `[integrity] drill_dir`, a directory the file
  integrity monitor watches as `critical` and whose changes it marks as drills; the real
  critical-change rule (`fim_critical_change` as shipped) must raise the hazard. The file is
  rewritten, never deleted, so no stray event follows the drill.
"""

from __future__ import annotations

import fnmatch
import random
from datetime import datetime
from pathlib import Path

from sentinel.config.schema import Config
from sentinel.core.clock import Clock
from sentinel.core.files import Directory
from sentinel.drills.runner import Scenario
from sentinel.rules.text import matches
from sentinel.sources.detectors.auth import DRILL_LOG
from sentinel.sources.host.drill_probe import PROBE_METRIC, clear_probe, set_probe

PROBE_HOLD = 120.0  # the probe expires on its own if the drill dies half-way


def metric_value(text: str, name: str) -> float | None:
    """The value of an unlabelled sample in an exposition, or None."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


class ThresholdScenario:
    """Cross the drill threshold rule through the drill probe collector."""

    name = "threshold"
    description = "raise the drill probe gauge so the drill_threshold rule fires"
    rule = "drill_threshold"

    def target(self, config: Config) -> tuple[str, str | None]:
        """The drill rule, on this terminal."""
        del config
        return self.rule, None

    def unavailable(self, config: Config) -> str:
        """Needs the probe collector and the rule."""
        if not config.collectors.drill_probe.enabled:
            return "[collectors.drill_probe] is disabled"
        if not any(r.name == self.rule and r.metric == PROBE_METRIC for r in config.enabled_rules):
            return f"rule {self.rule} on {PROBE_METRIC} is not enabled"
        return ""

    def stimulate(self, config: Config, clock: Clock) -> None:
        """Probe up."""
        set_probe(config.agent.state_dir, 1.0, until=clock.time() + PROBE_HOLD)

    def detected(self, before: str, now: str) -> bool:
        """The agent reports the probe up."""
        del before
        value = metric_value(now, PROBE_METRIC)
        return value is not None and value >= 1

    def cleanup(self, config: Config) -> None:
        """Probe down."""
        clear_probe(config.agent.state_dir)


def labelled_value(text: str, name: str, **labels: str) -> float:
    """The value of one labelled sample (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class BruteForceScenario:
    """A synthetic password-guessing burst through the auth detector and the real brute-force rule."""

    name = "brute_force"
    description = "write failed SSH logins from a TEST-NET address to the auth drill log"
    events_metric = "sentinel_events_total"

    def __init__(self) -> None:
        self.source = "203.0.113.0"  # chosen per drill in target()
        self.burst = 0

    def _rule(self, config: Config) -> tuple[str, int] | None:
        for rule in config.enabled_rules:
            counts_failures = rule.event and fnmatch.fnmatchcase("auth.login_failed", rule.event)
            if counts_failures and not rule.where and "source" in rule.group_by:
                return rule.name, rule.count
        return None

    def target(self, config: Config) -> tuple[str, str | None]:
        """The brute-force rule, grouped by a fresh source address (so `mute` never hides a drill)."""
        used = self._last_source(config)
        while self.source == used or self.source.endswith(".0"):  # never the group the last drill muted
            self.source = f"203.0.113.{random.randint(1, 254)}"  # noqa: S311 - a label, not a secret
        found = self._rule(config)
        return (found[0] if found else "login_bruteforce"), self.source

    @staticmethod
    def _last_source(config: Config) -> str:
        """The source address of the last line in the drill log ("" when none)."""
        try:
            with (config.agent.state_dir / DRILL_LOG).open("rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 512))
                tail = fh.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        words = tail[-1].split() if tail else []
        return words[words.index("from") + 1] if "from" in words[:-1] else ""

    def unavailable(self, config: Config) -> str:
        """Needs the auth detector with its drill log, and a rule counting failures per source."""
        auth = config.collectors.auth
        if not auth.enabled:
            return "[collectors.auth] is disabled"
        if not auth.drill_log:
            return "[collectors.auth] drill_log is off"
        if self._rule(config) is None:
            return "no enabled rule counts auth.login_failed grouped by source"
        return ""

    def stimulate(self, config: Config, clock: Clock) -> None:
        """Append count + 2 failed logins, timestamped now, from the address target() chose."""
        found = self._rule(config)
        assert found is not None
        self.burst = found[1] + 2
        stamp = datetime.fromtimestamp(clock.time()).astimezone().isoformat(timespec="microseconds")
        lines = "".join(
            f"{stamp} {config.agent.terminal_id} sshd[4{i:04d}]: Failed password for invalid user drill{i} "
            f"from {self.source} port {40000 + i} ssh2\n"
            for i in range(self.burst)
        )
        # state_dir belongs to the agent's account and this may run as root: appended through
        # core.files (never through a link that account planted), the file stays the agent's
        with (
            Directory.open(config.agent.state_dir, strict=True) as state,
            state.sub(DRILL_LOG.parent.name) as drill,
        ):
            drill.append(DRILL_LOG.name, lines.encode("utf-8"), owner=state.owner)

    def detected(self, before: str, now: str) -> bool:
        """The auth detector counted the burst."""
        kind = {"detector": "auth", "kind": "login_failed"}
        grown = labelled_value(now, self.events_metric, **kind) - labelled_value(
            before, self.events_metric, **kind
        )
        return grown >= self.burst > 0

    def cleanup(self, config: Config) -> None:
        """Nothing to remove: the drill log only grows, and the follower reads only new lines."""
        del config


class FileChangeScenario:
    """A change to a drill file under a watched tree, through the integrity monitor and its rule."""

    name = "file_change"
    description = "rewrite a file in the integrity monitor's drill directory"
    probe_name = "drill-probe.txt"
    metric = "sentinel_fim_changes_total"

    def _rule(self, config: Config) -> str | None:
        for rule in config.enabled_rules:
            fim = rule.event and fnmatch.fnmatchcase("fim.modified", rule.event)
            if fim and matches(rule.where.get("policy", "critical"), "critical"):
                return rule.name
        return None

    def _probe(self, config: Config) -> Path:
        assert config.integrity.drill_dir is not None
        return config.integrity.drill_dir / self.probe_name

    def target(self, config: Config) -> tuple[str, str | None]:
        """The critical-change rule, on the probe file."""
        rule = self._rule(config) or "fim_critical_change"
        return rule, str(self._probe(config)) if config.integrity.drill_dir else None

    def unavailable(self, config: Config) -> str:
        """Needs realtime integrity monitoring with a drill_dir, and a rule for critical changes."""
        fim = config.integrity
        if not fim.enabled or not fim.realtime:
            return "[integrity] realtime monitoring is off"
        if fim.drill_dir is None:
            return "[integrity] drill_dir is not set"
        if self._rule(config) is None:
            return "no enabled rule raises critical fim changes"
        return ""

    def stimulate(self, config: Config, clock: Clock) -> None:
        """New content (so size and hash change) in the probe file."""
        probe = self._probe(config)
        nonce = "x" * random.randint(1, 64)  # noqa: S311 - a different size every drill
        text = f"sentinel emergency drill at {clock.time():.6f} {nonce}\n"
        # the drill directory belongs to the agent's account and this may run as root: rewritten
        # in place through core.files (a link or a hard link planted there is refused, never
        # followed) and, when new, handed to the directory's owner on the descriptor so that
        # the agent's scheduled drills can rewrite it
        with Directory.open(probe.parent, create=True, strict=True) as drill:
            drill.rewrite(probe.name, text.encode("utf-8"), owner=drill.owner)

    def detected(self, before: str, now: str) -> bool:
        """The monitor counted a created or modified critical file."""

        def changes(text: str) -> float:
            return sum(
                labelled_value(text, self.metric, kind=k, policy="critical") for k in ("created", "modified")
            )

        return changes(now) > changes(before)

    def cleanup(self, config: Config) -> None:
        """Nothing: the probe file stays (deleting it would be one more change)."""
        del config


SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (ThresholdScenario(), BruteForceScenario(), FileChangeScenario())
}
