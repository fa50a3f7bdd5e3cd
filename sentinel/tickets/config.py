"""`[[sinks]]`: where tickets go, and which hazard transitions each sink receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sentinel.core.model import Category, Severity
from sentinel.core.settings import Duration, KeyPath, field, frozen_map, positive
from sentinel.hazards.records import HazardRecord
from sentinel.hazards.trail import TICKETED

TRANSITIONS = tuple(dict.fromkeys(TICKETED.values()))
"""Every transition a ticket can carry, in lifecycle order (from the store's TICKETED table)."""


def _transitions(value: tuple[str, ...]) -> str | None:
    bad = [t for t in value if t not in TRANSITIONS]
    return f"unknown transition {bad[0]!r} (known: {', '.join(TRANSITIONS)})" if bad else None


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """One `[[sinks]]` entry."""

    name: str
    type: Literal["webhook", "alertmanager", "file"]
    enabled: bool = True
    # routing: empty means everything
    categories: tuple[Category, ...] = ()
    severities: tuple[Severity, ...] = ()
    transitions: tuple[str, ...] = field((), check=_transitions)
    include_drills: bool = True
    # delivery
    url: str = ""
    urls: tuple[str, ...] = ()
    timeout: Duration = field(Duration(10), check=positive)
    concurrency: int = field(2, check=positive)
    max_backoff: Duration = field(Duration(300), check=positive)
    headers: Mapping[str, str] = field(default_factory=frozen_map)
    secret_file: Path | None = None
    unsigned: bool = False  # webhook: send without a signature (only for a receiver that cannot verify)
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    ca_file: Path | None = None
    proxy: str = ""
    # alertmanager: re-send firing hazards more often than its resolve_timeout (5m)
    resend_interval: Duration = field(Duration(60), check=positive)
    # file
    path: Path | None = None

    def validate(self) -> list[tuple[KeyPath, str]]:
        """What each type needs."""
        problems: list[tuple[KeyPath, str]] = []
        if self.type == "webhook" and not self.url:
            problems.append((("url",), "a webhook sink needs a url"))
        if self.type == "webhook" and self.secret_file is None and not self.unsigned:
            problems.append(
                (
                    ("secret_file",),
                    "a webhook sink needs a secret_file to sign its tickets "
                    "(or unsigned = true for a receiver that cannot verify signatures)",
                )
            )
        if self.unsigned and self.type != "webhook":
            problems.append((("unsigned",), "applies to webhook sinks only"))
        elif self.unsigned and self.secret_file is not None:
            problems.append(
                (("unsigned",), "unsigned = true and a secret_file contradict each other: remove one")
            )
        if self.type == "alertmanager" and not (self.url or self.urls):
            problems.append((("urls",), "an alertmanager sink needs url or urls"))
        if self.type == "file" and self.path is None:
            problems.append((("path",), "a file sink needs a path"))
        for key in ("url", "proxy", *(f"urls[{i}]" for i in range(len(self.urls)))):
            value = self.url if key == "url" else self.proxy if key == "proxy" else self.urls[int(key[5:-1])]
            if value and not value.startswith(("http://", "https://")):
                problems.append(((key,), f'expected an http(s) URL, got "{value}"'))
        if bool(self.client_cert_file) != bool(self.client_key_file):
            problems.append((("client_key_file",), "client_cert_file and client_key_file go together"))
        for header in self.headers:
            if header.lower().startswith("webhook-") or header.lower() == "content-type":
                problems.append((("headers", header), "this header is set by Sentinel"))
        return problems

    @property
    def targets(self) -> tuple[str, ...]:
        """Every URL to send to."""
        return tuple(u for u in (self.url, *self.urls) if u)

    def wants(self, record: HazardRecord, transition: str) -> bool:
        """Whether this sink receives `transition` of the hazard `record`."""
        if not self.enabled:
            return False
        if self.categories and record.category not in self.categories:
            return False
        if self.severities and record.severity not in self.severities:
            return False
        if self.transitions and transition not in self.transitions:
            return False
        return self.include_drills or not record.drill
