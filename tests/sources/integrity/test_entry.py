"""Judging one path's old and new record under a policy."""

from __future__ import annotations

from sentinel.sources.integrity.config import DEFAULT_CHECKS
from sentinel.sources.integrity.entry import Entry, judge

BASE = Entry("file", 0o644, 0, 0, 100, 1, 1, 42, 1, None, "a" * 64, "")


def checks(policy: str) -> frozenset[str]:
    return frozenset(DEFAULT_CHECKS[policy])  # type: ignore[index]


def test_touch_is_not_a_change() -> None:
    """A new mtime and ctime with the same content is not reported under readonly."""
    touched = BASE._replace(mtime_ns=5, ctime_ns=5)
    assert judge(BASE, touched, checks("readonly"), "readonly") is None


def test_content_change_is_modified() -> None:
    """A different hash is `modified`, naming what changed."""
    new = BASE._replace(sha256="b" * 64, size=101)
    assert judge(BASE, new, checks("critical"), "critical") == ("modified", ["size", "sha256"])


def test_mode_change_is_attributes() -> None:
    """A chmod alone is `attributes`."""
    new = BASE._replace(mode=0o4755)
    assert judge(BASE, new, checks("readonly"), "readonly") == ("attributes", ["mode"])


def test_type_change_is_replaced() -> None:
    """A file that became a symlink is `replaced`."""
    new = BASE._replace(type="symlink", target="/tmp/x", sha256=None)
    assert judge(BASE, new, checks("critical"), "critical")[0] == "replaced"  # type: ignore[index]


def test_growing_may_grow() -> None:
    """A log that grew is fine."""
    assert judge(BASE, BASE._replace(size=500), checks("growing"), "growing") is None


def test_growing_shrunk_is_truncated() -> None:
    """A log that shrank is `truncated`."""
    assert judge(BASE, BASE._replace(size=0), checks("growing"), "growing") == (
        "truncated",
        ["size"],
    )


def test_growing_new_inode_is_replaced() -> None:
    """A log swapped for another file is `replaced`."""
    new = BASE._replace(inode=43, size=500)
    assert judge(BASE, new, checks("growing"), "growing")[0] == "replaced"  # type: ignore[index]


def test_row_round_trip() -> None:
    """The compact row form reads back to the same entry."""
    assert Entry.from_row(BASE.to_row()) == BASE
