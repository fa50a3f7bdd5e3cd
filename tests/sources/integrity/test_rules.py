"""The shipped rules (config/rules.d/integrity.toml) turn FIM events into the right hazards."""

from __future__ import annotations

from pathlib import Path

from sentinel.core.model import Event, freeze_fields
from tests.sources.integrity.rules_helper import hazards_for


def event(kind: str, subject: str, **fields: str) -> Event:
    return Event("fim", kind, subject, 1_800_000_000.0, freeze_fields(fields))


def test_critical_change_is_a_critical_hazard(tmp: Path) -> None:
    """A modified critical file raises one critical it_change hazard that never auto-resolves."""
    [h] = hazards_for([event("modified", "/etc/shadow", policy="critical", changed="sha256")], tmp / "h.db")
    assert (h["rule"], h["severity"], h["category"], h["subject"]) == (
        "fim_critical_change",
        "critical",
        "it_change",
        "/etc/shadow",
    )


def test_repeated_changes_to_one_path_are_one_hazard(tmp: Path) -> None:
    """Two changes to one readonly file are one hazard with two occurrences."""
    events = [event("modified", "/usr/bin/ls", policy="readonly")] * 2
    [h] = hazards_for(events, tmp / "h.db")
    assert h["occurrences"] == 2


def test_data_changes_are_not_ticketed(tmp: Path) -> None:
    """Document changes alone raise nothing."""
    assert hazards_for([event("modified", "/srv/docs/a.doc", policy="data")], tmp / "h.db") == []


def test_readonly_changes_in_a_burst_are_left_to_the_burst(tmp: Path) -> None:
    """Per-path readonly events marked burst=yes raise nothing; the mass hazard speaks for them."""
    events = [event("modified", f"/opt/app/{i}", policy="readonly", burst="yes") for i in range(5)]
    assert hazards_for(events, tmp / "h.db") == []


def test_growing_log_truncated_is_a_hazard(tmp: Path) -> None:
    """A truncated log raises a cyber_attack hazard; a created one does not."""
    events = [
        event("truncated", "/var/log/auth.log", policy="growing"),
        event("created", "/var/log/new.log", policy="growing"),
    ]
    [h] = hazards_for(events, tmp / "h.db")
    assert (h["rule"], h["category"]) == ("fim_log_tampered", "cyber_attack")


def test_mass_modification_start_and_end_are_one_hazard(tmp: Path) -> None:
    """The episode's start and end events land on one critical data_security hazard."""
    started = event("mass_modification", "mass-modification", phase="started", changes="200")
    ended = event("mass_modification", "mass-modification", phase="ended", changes="50000")
    [h] = hazards_for([started, ended], tmp / "h.db")
    assert (h["rule"], h["severity"], h["category"], h["occurrences"]) == (
        "fim_mass_modification",
        "critical",
        "data_security",
        2,
    )


def test_tampered_baseline_is_critical(tmp: Path) -> None:
    """baseline_tampered raises a critical hazard naming the reason."""
    [h] = hazards_for(
        [event("baseline_tampered", "/s/integrity/baseline.fim", reason="signature")], tmp / "h.db"
    )
    assert h["severity"] == "critical" and "signature" in h["title"]
