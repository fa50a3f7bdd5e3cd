"""Durations, sizes and the typed builder."""

from __future__ import annotations

import pytest

from sentinel.core.settings import format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("7d", 604800),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1w", 604800),
        ("1.5h", 5400),
    ],
)
def test_durations_parse(text: str, seconds: float) -> None:
    """Every documented duration spelling parses to seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["five", "", "5", "5x", "m5", "5m garbage", "-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    """Anything else is a ValueError."""
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("500MiB", 500 * 1024**2),
        ("2GB", 2 * 10**9),
        ("4096", 4096),
        ("1KiB", 1024),
        ("10 MiB", 10 * 1024**2),
    ],
)
def test_sizes_parse(text: str, size: int) -> None:
    """Binary and decimal units both work."""
    assert parse_size(text) == size


def test_format_duration_round_trips() -> None:
    """format_duration writes what parse_duration reads."""
    for seconds in (1, 59, 61, 3600, 5400, 86400 + 7):
        assert parse_duration(format_duration(seconds)) == seconds
