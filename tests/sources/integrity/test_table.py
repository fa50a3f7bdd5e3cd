"""The compact entry table: stores every entry exactly, behaves as a dict, and stays small."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.sources.integrity.baseline import Baseline, BaselineError, BaselineFiles
from sentinel.sources.integrity.entry import Entry
from sentinel.sources.integrity.table import EntryTable, pack, unpack

SHA = "0123456789abcdef" * 4
FILE = Entry(
    "file", 0o644, 0, 0, 4096, 1_700_000_000_123_456_789, 1_700_000_000_123_456_789, 1 << 40, 1, None, SHA, ""
)

hex_digest = st.binary(min_size=32, max_size=32).map(bytes.hex)
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
entries = st.builds(
    Entry,
    st.sampled_from(["file", "dir", "symlink", "fifo", "socket", "char", "block", "other", "weird"]),
    st.integers(0, 0o7777) | st.integers(-5, 1 << 20),
    st.integers(0, (1 << 32) - 1) | st.integers(-(1 << 33), 1 << 33),
    st.integers(0, (1 << 32) - 1),
    st.integers(-(1 << 63), (1 << 63) - 1) | st.integers(1 << 63, 1 << 70),
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.integers(-(1 << 63), (1 << 63) - 1),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, (1 << 32) - 1) | st.integers(1 << 32, 1 << 40),
    st.none() | text | st.just("caf\udce9"),  # a target that is not valid UTF-8 on disk
    st.none() | hex_digest | hex_digest.map(str.upper) | text,
    st.none() | st.just("") | hex_digest | text,
)


@given(entries)
@settings(max_examples=500)
def test_every_entry_is_stored_exactly(entry: Entry) -> None:
    """Packed or kept aside, what is read back is what was written (values and types)."""
    table = EntryTable({"/p": entry})
    assert table["/p"] == entry
    assert [type(v) for v in table["/p"]] == [type(v) for v in entry]


@given(entries, st.none() | hex_digest | hex_digest.map(str.upper))
@settings(max_examples=300)
def test_the_scans_second_pass_reads_stat_and_adds_the_hash(entry: Entry, sha256: str | None) -> None:
    """stat_key reads (size, mtime, ctime, inode) from the record; set_sha256 gives what
    with_digests would, whether the record is packed or kept aside."""
    walked = entry.with_digests(None, entry.xattrs)
    table = EntryTable({"/p": walked})
    assert table.stat_key("/p") == (entry.size, entry.mtime_ns, entry.ctime_ns, entry.inode)
    table.set_sha256("/p", sha256)
    assert table["/p"] == walked.with_digests(sha256, walked.xattrs)


def test_a_hashed_file_packs_into_the_smallest_size() -> None:
    """The common entry (a hashed regular file) is one bytes object of pymalloc's 112-byte class."""
    raw = pack(FILE)
    assert raw is not None
    assert unpack(raw) == FILE
    assert sys.getsizeof(raw) <= 112


def test_what_does_not_fit_is_kept_as_it_is() -> None:
    """An uppercase digest would not survive hex round-tripping: the entry is kept unpacked."""
    odd = FILE._replace(sha256=SHA.upper())
    assert pack(odd) is None
    table = EntryTable({"/odd": odd, "/file": FILE})
    assert table["/odd"] == odd
    table["/odd"] = FILE  # becomes packable: moves over, no stale copy left behind
    assert table["/odd"] == FILE
    assert len(table) == 2


ops = st.lists(
    st.tuples(st.sampled_from(["set", "del", "get"]), st.sampled_from(["/a", "/b", "/c/d", "/e"]), entries),
    max_size=60,
)


@given(ops)
@settings(max_examples=200)
def test_behaves_like_a_dict(operations: list[tuple[str, str, Entry]]) -> None:
    """Any sequence of writes, deletions and reads gives what a dict would."""
    table, model = EntryTable(), dict[str, Entry]()
    for op, path, entry in operations:
        if op == "set":
            table[path], model[path] = entry, entry
        elif op == "del":
            if path in model:
                del table[path], model[path]
            else:
                with pytest.raises(KeyError):
                    del table[path]
        else:
            assert table.get(path) == model.get(path)
            assert (path in table) == (path in model)
    assert dict(table) == model
    assert len(table) == len(model)
    assert dict(table.copy()) == model
    assert dict(table.filtered(lambda p: p.startswith("/c"))) == {
        p: e for p, e in model.items() if p.startswith("/c")
    }


def test_same_compares_without_unpacking() -> None:
    """`same` is true for equal entries and false for a change, a missing path and an odd entry."""
    a = EntryTable({"/x": FILE, "/y": FILE, "/odd": FILE._replace(type="weird")})
    b = EntryTable({"/x": FILE, "/y": FILE._replace(mode=0o600), "/odd": FILE._replace(type="weird")})
    assert a.same("/x", b)
    assert not a.same("/y", b)
    assert a.same("/odd", b)
    assert not a.same("/x", EntryTable())


def test_a_loaded_baseline_is_a_table_and_refuses_deletions(tmp: Path) -> None:
    """The baseline streams into a table; a signed baseline holding a deletion is malformed."""
    files = BaselineFiles(tmp / "state")
    key = files.create_key()
    files.write(Baseline({"/etc/passwd": FILE}, 1.0), key)
    loaded = files.load("baseline", key)
    assert isinstance(loaded.entries, EntryTable)
    assert loaded.present() == {"/etc/passwd": FILE}
    files.write(Baseline({"/etc/passwd": FILE, "/etc/gone": None}, 1.0), key)
    with pytest.raises(BaselineError) as info:
        files.load("baseline", key)
    assert info.value.problem == "malformed"
    assert "deletion" in str(info.value)
