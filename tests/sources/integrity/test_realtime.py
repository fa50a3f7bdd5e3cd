"""Realtime: each kind of change on a real tree is the right event within 2 seconds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentinel.sources.integrity.config import WatchConfig
from tests.sources.integrity.conftest import config_for


@pytest.fixture
def trees(tmp: Path, run_fim: Callable[..., Any]) -> Any:
    """/etc-like critical files, a readonly bin tree, a growing log dir; the monitor running."""
    (tmp / "etc").mkdir()
    (tmp / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "ls").write_bytes(b"\x7fELF" * 64)
    (tmp / "log").mkdir()
    (tmp / "log" / "syslog").write_text("line\n" * 50)
    (tmp / "outside").mkdir()
    config = config_for(
        WatchConfig(tmp / "etc" / "passwd", policy="critical"),
        WatchConfig(tmp / "bin", policy="readonly"),
        WatchConfig(tmp / "log", policy="growing"),
    )
    collector, recorder = run_fim(config)
    return tmp, collector, recorder


def test_create(trees: Any) -> None:
    """A new file in a readonly tree is `created`."""
    tmp, _, rec = trees
    (tmp / "bin" / "backdoor").write_text("#!/bin/sh\n")
    event = rec.wait_for("created", tmp / "bin" / "backdoor")
    assert event.get("policy") == "readonly"
    assert "sha256=" in str(event.get("new"))


def test_modify(trees: Any) -> None:
    """Changed content of a critical file is `modified` with old and new hashes."""
    tmp, _, rec = trees
    (tmp / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n")
    event = rec.wait_for("modified", tmp / "etc" / "passwd")
    assert event.get("policy") == "critical"
    assert "sha256" in str(event.get("changed"))
    assert str(event.get("old")).split("sha256=")[1] != str(event.get("new")).split("sha256=")[1]


def test_chmod(trees: Any) -> None:
    """A setuid bit added is `attributes` naming mode, old and new."""
    tmp, _, rec = trees
    (tmp / "bin" / "ls").chmod(0o4755)
    event = rec.wait_for("attributes", tmp / "bin" / "ls")
    assert event.get("changed") == "mode"
    assert "mode=4755" in str(event.get("new"))


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_chown(trees: Any) -> None:
    """A new owner is `attributes` naming uid and gid."""
    tmp, _, rec = trees
    os.chown(tmp / "bin" / "ls", 1, 1)
    event = rec.wait_for("attributes", tmp / "bin" / "ls")
    assert event.get("changed") == "uid,gid"


def test_delete(trees: Any) -> None:
    """A removed critical file is `deleted`."""
    tmp, _, rec = trees
    (tmp / "etc" / "passwd").unlink()
    rec.wait_for("deleted", tmp / "etc" / "passwd")


def test_rename_within_tree(trees: Any) -> None:
    """A rename inside a watched tree is one `renamed` event naming the new path."""
    tmp, _, rec = trees
    (tmp / "bin" / "ls").rename(tmp / "bin" / "ls.old")
    event = rec.wait_for("renamed", tmp / "bin" / "ls")
    assert event.get("to") == str(tmp / "bin" / "ls.old")


def test_rename_in(trees: Any) -> None:
    """A file moved in from outside is `created`."""
    tmp, _, rec = trees
    (tmp / "outside" / "tool").write_text("x")
    (tmp / "outside" / "tool").rename(tmp / "bin" / "tool")
    rec.wait_for("created", tmp / "bin" / "tool")


def test_rename_out(trees: Any) -> None:
    """A file moved out of the tree is `deleted`."""
    tmp, _, rec = trees
    (tmp / "bin" / "ls").rename(tmp / "outside" / "ls")
    rec.wait_for("deleted", tmp / "bin" / "ls")


def test_directory_moved_in_is_watched(trees: Any) -> None:
    """A directory moved in is reported with its files, and changes inside it later are seen."""
    tmp, _, rec = trees
    (tmp / "outside" / "pkg").mkdir()
    (tmp / "outside" / "pkg" / "lib.so").write_text("x")
    (tmp / "outside" / "pkg").rename(tmp / "bin" / "pkg")
    rec.wait_for("created", tmp / "bin" / "pkg" / "lib.so")
    (tmp / "bin" / "pkg" / "lib.so").write_text("changed")
    rec.wait_for("modified", tmp / "bin" / "pkg" / "lib.so")


def test_replace_by_symlink(trees: Any) -> None:
    """A critical file replaced by a symlink is `replaced`, the link target in the evidence."""
    tmp, _, rec = trees
    (tmp / "etc" / "passwd").unlink()
    (tmp / "etc" / "passwd").symlink_to("/tmp/fake-passwd")
    event = rec.wait_for("replaced", tmp / "etc" / "passwd")
    assert "target=/tmp/fake-passwd" in str(event.get("new"))


def test_replace_by_rename_over(trees: Any) -> None:
    """`mv new passwd` (how editors and useradd write) is seen through the directory watch."""
    tmp, _, rec = trees
    (tmp / "etc" / "passwd.new").write_text("evil\n")
    (tmp / "etc" / "passwd.new").rename(tmp / "etc" / "passwd")
    event = rec.wait_for("replaced", tmp / "etc" / "passwd")
    assert "sha256" in str(event.get("changed"))


def test_truncate_growing(trees: Any) -> None:
    """A cleared log is `truncated`."""
    tmp, _, rec = trees
    (tmp / "log" / "syslog").write_text("")
    rec.wait_for("truncated", tmp / "log" / "syslog")


def test_growing_log_appends_are_quiet(trees: Any) -> None:
    """Appending to a log raises nothing (a later truncation still does)."""
    tmp, _, rec = trees
    with open(tmp / "log" / "syslog", "a") as fh:
        fh.write("more\n")
    (tmp / "log" / "syslog").write_text("x")
    rec.wait_for("truncated", tmp / "log" / "syslog")
    assert rec.kinds(tmp / "log" / "syslog") == ["truncated"]


def test_touch_is_not_reported(trees: Any) -> None:
    """A touch (new mtime, same content) raises no event; a real change afterwards does."""
    tmp, _, rec = trees
    os.utime(tmp / "bin" / "ls", (1, 1))
    (tmp / "bin" / "marker").write_text("x")  # an event after the touch, to know it was processed
    rec.wait_for("created", tmp / "bin" / "marker")
    assert rec.kinds(tmp / "bin" / "ls") == []


def test_directory_removed_reports_its_files(trees: Any) -> None:
    """Removing a directory reports each file in it as deleted."""
    tmp, _, rec = trees
    (tmp / "bin" / "sub").mkdir()
    (tmp / "bin" / "sub" / "a").write_text("x")
    rec.wait_for("created", tmp / "bin" / "sub" / "a")
    shutil.rmtree(tmp / "bin" / "sub")
    rec.wait_for("deleted", tmp / "bin" / "sub" / "a")
    rec.wait_for("deleted", tmp / "bin" / "sub")


def test_a_followed_link_is_judged_as_the_scans_record_it(tmp: Path, run_fim: Any) -> None:
    """Realtime records a followed link as its target, as the scans do: new content behind it is
    `modified`, never `replaced` by a change of type (the target is outside the watched tree:
    follow_outside, issue 19)."""
    (tmp / "app").mkdir()
    (tmp / "real.conf").write_text("port = 1\n")
    link = tmp / "app" / "current.conf"
    link.symlink_to(tmp / "real.conf")
    watch = WatchConfig(tmp / "app", policy="critical", follow_symlinks=True, follow_outside=True)
    collector, rec = run_fim(config_for(watch))
    assert collector.reference[str(link)].type == "file"
    (tmp / "real.conf").write_text("port = 2222\n")
    os.utime(link, follow_symlinks=False)  # an event on the link itself
    event = rec.wait_for("modified", link)
    assert "sha256" in str(event.get("changed"))
    assert "replaced" not in rec.kinds(link)
