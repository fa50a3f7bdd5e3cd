"""Value types that flow through the pipeline: collectors emit Samples and Events, rules emit Findings.

All of them are frozen, slotted and hashable so they can be shared between threads without copies.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Scalar = str | int | float | bool | None
Labels = tuple[tuple[str, str], ...]
Fields = tuple[tuple[str, Scalar], ...]


class Severity(enum.StrEnum):
    """How bad a hazard is. Ordered: info < minor < major < critical."""

    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info up to 3 for critical, for comparisons."""
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = (Severity.INFO, Severity.MINOR, Severity.MAJOR, Severity.CRITICAL)


class Category(enum.StrEnum):
    """The production-safety programme's five kinds of non-traditional risk."""

    TERMINAL_EQUIPMENT = "terminal_equipment"
    CYBER_ATTACK = "cyber_attack"
    DATA_SECURITY = "data_security"
    IT_CHANGE = "it_change"
    STABILITY = "stability"


MetricType = Literal["gauge", "counter", "info"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a collector exports under one metric name: type, help text and label names."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()


def freeze_labels(labels: Mapping[str, str] | None) -> Labels:
    """Turn a label mapping into the sorted tuple form that Samples carry."""
    if not labels:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def freeze_fields(fields: Mapping[str, Scalar] | None) -> Fields:
    """Turn an event's field mapping into a hashable tuple, keeping insertion order."""
    if not fields:
        return ()
    return tuple((str(k), v) for k, v in fields.items())


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a metric at collection time. Labels must be bounded (DESIGN §3)."""

    name: str
    value: float
    labels: Labels = ()

    @classmethod
    def of(cls, name: str, value: float, **labels: str) -> Sample:
        """Build a sample with keyword labels: Sample.of("x_bytes", 3, mountpoint="/")."""
        return cls(name, float(value), freeze_labels(labels))

    def label(self, key: str, default: str = "") -> str:
        """The value of one label, or `default`."""
        for k, v in self.labels:
            if k == key:
                return v
        return default

    @property
    def label_map(self) -> dict[str, str]:
        """The labels as a fresh dict."""
        return dict(self.labels)


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened: a file changed, a login failed, a USB disk appeared.

    `detector` is the detector's name and `kind` what happened (`login_failed`); `subject` is the
    thing it happened to (a path, an IP address, a device) and is what rules group on by default.
    `time` is wall-clock seconds since the epoch.
    """

    detector: str
    kind: str
    subject: str
    time: float
    fields: Fields = ()

    def get(self, key: str, default: Scalar = None) -> Scalar:
        """One field's value, or `default`. `subject`, `kind` and `detector` are fields too."""
        if key == "subject":
            return self.subject
        if key == "kind":
            return self.kind
        if key == "detector":
            return self.detector
        for k, v in self.fields:
            if k == key:
                return v
        return default

    @property
    def field_map(self) -> dict[str, Scalar]:
        """The fields as a fresh dict."""
        return dict(self.fields)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a streaming source has read to, handed to the pipeline with what it read.

    The writer stores `value` (the source's own JSON: offsets, a journal cursor) under `source`
    in the same transaction as the findings of the batch's events, so a source that resumes
    from its stored position never reads a line twice, nor skips one, whenever it is killed.
    """

    source: str
    value: str


FindingState = Literal["firing", "cleared"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict about one subject: it is firing (with a severity) or it has cleared.

    The hazard store turns firing findings into hazard records (deduplicated by fingerprint) and
    cleared findings into auto-resolutions where the rule allows it.
    """

    rule: str
    subject: str
    state: FindingState
    severity: Severity
    category: Category
    title: str
    time: float
    evidence: Fields = ()
    rectification: tuple[str, ...] = ()
    auto_resolve: bool = True
    drill: bool = False
    deadline_seconds: float | None = None
    owner: str = ""
    labels: Labels = field(default=())
    details: str = ""  # a JSON object the record keeps as it is (an IT change's packages and files)

    @property
    def evidence_map(self) -> dict[str, Scalar]:
        """The evidence as a fresh dict."""
        return dict(self.evidence)


def severity_levels_check(value: Mapping[str, object]) -> str | None:
    """Config check: every key of a per-severity table names a severity."""
    bad = [k for k in value if k not in {s.value for s in Severity}]
    if bad:
        return f"unknown severity {bad[0]!r} (use info, minor, major, critical)"
    return None


def clean_text(text: str) -> str:
    """Text that is safe to store, encode and print: lone surrogates become visible escapes.

    Python decodes undecodable file names and argv bytes into lone surrogates
    (surrogateescape); UTF-8 cannot encode those, so they would break SQLite, JSON consumers and
    terminals. Bytes that came from surrogateescape come back as `\\xff`, others as `\\udxxx`.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clean_value(value: Scalar) -> Scalar:
    """clean_text for strings; other scalars as they are."""
    return clean_text(value) if isinstance(value, str) else value


def visible(text: str) -> str:
    """Text as it can be shown or exported: undecodable bytes and control characters escaped
    (ESC as `\\x1b`, BEL as `\\x07`, a newline as `\\n`), so a hostile file name, user name or
    title cannot drive a terminal (OSC titles, SGR colours) or split a report's row."""
    cleaned = clean_text(str(text))
    if cleaned.isprintable():
        return cleaned
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in cleaned)
