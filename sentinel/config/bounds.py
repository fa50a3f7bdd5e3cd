"""The allowed range of every number in the config, checked at load (and so at every reload).

A value outside its range is one error line naming file and key, exit 2 for `check-config`,
and a rejected reload that keeps the running config. The ranges are what the agent has been
shown to run with (tests/config/test_bounds.py starts it at both ends of every range); the
lower ends of intervals keep an idle agent idle, the upper ends stay far from the overflows
of time_t, of thread waits and of SQLite integers.

Keys are dotted paths with list indices dropped (`rules[3].for` is `rules.for`, a table of
durations like `hazards.sla` is `hazards.sla.*`); patterns use fnmatch. Every number, duration
and size a config section declares must match one (tests/config/test_bounds.py checks it), so
a new key cannot arrive without its range.
"""

from __future__ import annotations

from sentinel.core.settings import RangeTable

MS, S, MIN, H, D = 0.001, 1.0, 60.0, 3600.0, 86400.0
YEAR = 366 * D
KIB, MIB, GIB = 1024, 1024**2, 1024**3
HUGE = 1e15  # thresholds compare with metric values of any unit: only keep them finite

RANGES: dict[str, tuple[float, float]] = {
    # [agent]
    "agent.queue_size": (1, 10_000_000),
    "agent.collector_timeout": (1 * S, 1 * H),
    "agent.status_interval": (1 * S, 1 * H),  # the idle tick: below a second an idle agent spins
    # [metrics]
    "metrics.open_hazards_info_limit": (0, 100_000),
    # [hazards]
    "hazards.sla.*": (1 * MIN, 10 * YEAR),
    "hazards.escalation_interval": (1 * MIN, 10 * YEAR),
    "hazards.recurrence_count": (1, 1_000_000),
    "hazards.recurrence_window": (1 * MIN, 100 * YEAR),
    "hazards.evidence_keep": (1, 10_000),
    "hazards.retention": (1 * D, 100 * YEAR),
    "hazards.check_interval": (1 * S, 1 * D),
    "hazards.verify_interval": (1 * MIN, 7 * D),  # the trail's verification (issue 20)
    # [collectors.*]
    "collectors.*.interval": (0.5 * S, 1 * D),
    "collectors.filesystems.statfs_timeout": (10 * MS, 10 * MIN),
    "collectors.network.forget_vanished_after": (1 * S, 10 * YEAR),
    "collectors.services.processes.min_count": (1, 1_000_000),
    "collectors.services.timeout": (10 * MS, 10 * MIN),
    "collectors.accounts.suid_interval": (1 * MIN, 30 * D),
    "collectors.auth.poll_interval": (10 * MS, 1 * MIN),  # a blind follower is worse than a busy one
    "collectors.auth.max_line": (256, 64 * MIB),
    "collectors.auth.restart_backoff": (10 * MS, 1 * H),
    "collectors.listeners.allow_ports": (0, 65_535),
    "collectors.outbound.allowed_ports": (0, 65_535),
    "collectors.outbound.remember": (1 * S, 10 * YEAR),
    "collectors.outbound.transmit_rate": (1, 1_000 * GIB),
    "collectors.outbound.transmit_for": (1 * S, 1 * YEAR),
    "collectors.processes.cpu_threshold": (0, 1),
    "collectors.processes.cpu_for": (1 * S, 1 * YEAR),
    "collectors.packages.poll": (100 * MS, 1 * MIN),  # the inotify wake-up polls at once anyway
    "collectors.packages.settle": (100 * MS, 1 * H),
    "collectors.packages.remember": (1 * H, 1 * YEAR),
    "collectors.packages.files_listed": (1, 100_000),
    # [changes]
    "changes.windows.duration": (1 * MIN, 31 * D),
    # [[rules]]
    "rules.threshold": (-HUGE, HUGE),
    "rules.levels.*": (-HUGE, HUGE),
    "rules.clear": (-HUGE, HUGE),
    "rules.for": (0, 1 * YEAR),
    "rules.keep_firing_for": (0, 1 * YEAR),
    "rules.predict": (1 * S, 10 * YEAR),
    "rules.window": (0, 1 * YEAR),
    "rules.count": (1, 10_000_000),
    "rules.mute": (0, 1 * YEAR),
    "rules.deadline": (1 * MIN, 10 * YEAR),
    # [inspect]
    "inspect.command_timeout": (10 * MS, 1 * H),
    # [integrity]
    "integrity.debounce": (1 * MS, 1 * MIN),
    "integrity.max_delay": (1 * MS, 1 * H),
    "integrity.scan.workers": (1, 256),
    "integrity.scan.buffer": (4 * KIB, 1 * GIB),
    "integrity.scan.retries": (0, 1_000),
    "integrity.scan.cpu_share": (0.01, 1),  # 0 would never let a scan finish
    "integrity.scan.io_rate": (0, 1_000 * GIB),
    "integrity.scan.nice": (0, 19),
    "integrity.scan.deep_interval": (1 * MIN, 10 * YEAR),
    "integrity.scan.fallback_interval": (100 * MS, 30 * D),
    "integrity.mass_modification.renames": (1, 10_000_000),
    "integrity.mass_modification.rename_window": (1 * MS, 1 * D),
    "integrity.mass_modification.changes": (1, 100_000_000),
    "integrity.mass_modification.change_window": (1 * MS, 1 * D),
    "integrity.mass_modification.cooldown": (1 * MS, 1 * YEAR),
    "integrity.mass_modification.sample_paths": (1, 10_000),
    "integrity.hold_max": (1 * S, 1 * D),  # a change held longer than a day would be news too late
    # [hub] (the agent's client of the fleet ledger, issue 21)
    "hub.poll_interval": (1 * S, 1 * D),  # below a second 10,000 terminals would be a storm
    "hub.status_interval": (10 * S, 7 * D),
    "hub.timeout": (100 * MS, 10 * MIN),
    "hub.max_actions": (1, 1_000),  # the hub hands out at most [actions] max_per_poll anyway
    "hub.max_backoff": (1 * S, 1 * D),
    # [[sinks]]
    "sinks.timeout": (10 * MS, 1 * H),
    "sinks.concurrency": (1, 256),
    "sinks.max_backoff": (10 * MS, 7 * D),
    "sinks.resend_interval": (1 * S, 1 * D),
}


bounds = RangeTable(RANGES)
"""The allowed range of the number at a key path (the Builder's `bounds`)."""
