"""The realtime debouncer: each path on its own clock, renames released with their paths."""

from __future__ import annotations

import threading
import time

from sentinel.sources.integrity.realtime import Debouncer

DEBOUNCE, MAX_DELAY = 0.05, 0.5


def test_a_path_is_due_after_its_own_quiet_time() -> None:
    """Quiet for `debounce` since its last event: due; a moment before: not."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    d.add("/t/a", now=10.0)
    d.add("/t/a", now=10.02)
    assert d.poll(10.06) is None
    assert d.poll(10.07) == (["/t/a"], [])
    assert d.poll(10.5) is None and len(d) == 0


def test_a_steady_stream_elsewhere_holds_nobody_back() -> None:
    """A change every 20 ms to other paths: each path is still released 50 ms after its write
    (with one clock for all paths, the stream would hold everything until max_delay)."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    released: dict[str, float] = {}
    for i in range(100):
        now = 10.0 + i * 0.02
        d.add(f"/t/f{i}", now=now)
        batch = d.poll(now)
        if batch:
            released.update(dict.fromkeys(batch[0], now))
            d.done()
    for i in range(97):  # the last ones are still quiet-waiting at the end of the stream
        assert released[f"/t/f{i}"] - (10.0 + i * 0.02) <= DEBOUNCE + 0.02 + 1e-9


def test_a_path_written_without_pause_is_judged_by_max_delay() -> None:
    """Events every 10 ms on one path: released max_delay after its first event."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    first = 10.0
    out = None
    now = first
    while out is None:
        d.add("/t/log", now=now)
        now += 0.01
        out = d.poll(now)
    assert out == (["/t/log"], [])
    assert MAX_DELAY <= now - first < MAX_DELAY + 0.011


def test_a_rename_waits_for_both_of_its_paths() -> None:
    """A rename ties src and dest: a later event on dest holds the rename (and src) with it, and
    they come out together, in order."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    d.add("/t/other", now=10.0)
    d.add("/t/a", now=10.0)
    d.rename("/t/a", "/t/b", now=10.01)
    d.add("/t/b", now=10.04)
    assert d.poll(10.07) == (["/t/other"], [])  # untied: its own quiet time
    d.done()
    assert d.poll(10.085) is None  # /t/a is quiet, but /t/b (tied to it) is not
    assert d.pending("/t/a") and d.pending("/t/b")
    paths, renames = d.poll(10.095) or ([], [])
    assert sorted(paths) == ["/t/a", "/t/b"] and renames == [("/t/a", "/t/b")]


def test_a_tied_group_still_goes_after_max_delay() -> None:
    """Renames chained without pause are released once the oldest has waited max_delay."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    for i in range(60):
        d.rename(f"/t/f{i}", f"/t/f{i + 1}", now=10.0 + i * 0.01)
    out = d.poll(10.0 + MAX_DELAY)
    assert out is not None and len(out[1]) == 60


def test_take_blocks_until_due_and_in_flight_paths_count_as_pending() -> None:
    """take() sleeps until a path is due; until done() the path is pending (rescans skip it)."""
    d = Debouncer(DEBOUNCE, MAX_DELAY)
    stop = threading.Event()
    started = time.monotonic()
    d.add("/t/a")
    batch = d.take(stop, idle=5)
    assert batch == (["/t/a"], [])
    assert time.monotonic() - started >= DEBOUNCE
    assert d.pending("/t/a")
    d.done()
    assert not d.pending("/t/a")
    assert d.take(stop, idle=0.01) is None
