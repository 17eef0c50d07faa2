"""Manifests: canonical form, tree order, validation of hostile input, streaming diff (pure).

Property tests draw trees with names a file system allows (spaces, newlines, quotes,
non-ASCII, emoji) and check the canonical form, the validator and diff against a plain
dict-based model written here.
"""

from __future__ import annotations

import io
import json
import os
import tracemalloc
from collections import Counter
from collections.abc import Iterator

import blake3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from regen.store import (
    Change,
    Entry,
    ManifestInvalid,
    ManifestWriter,
    UnsupportedFormat,
    build_manifest,
    check_entry,
    check_path,
    diff,
    iter_entries,
    manifest_delta,
    parse_manifest,
    sort_key,
    walk,
)
from regen.store.manifest import HEADER, MAX_LINE_BYTES, encode_entry

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_LINE = json.dumps(HEADER, sort_keys=True, separators=(",", ":")).encode() + b"\n"

# -- strategies ----------------------------------------------------------------------------------

NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00")
names = st.text(NAME_CHARS, min_size=1, max_size=10).filter(lambda s: s not in (".", ".."))
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
xxhs = st.text("0123456789abcdef", min_size=32, max_size=32)
modes = st.integers(0, 0o7777)
targets = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20)


@st.composite
def leaves(draw: st.DrawFn, oids: st.SearchStrategy[str] = hexes) -> tuple[str, ...] | tuple[object, ...]:
    if draw(st.booleans()):
        return ("file", draw(modes), draw(st.integers(0, 1 << 40)), draw(oids), draw(xxhs))
    return ("symlink", draw(modes), draw(targets))


def trees(name_st: st.SearchStrategy[str], leaf_st: st.SearchStrategy[tuple[object, ...]],
          max_leaves: int = 30) -> st.SearchStrategy[dict[str, object]]:
    """A tree: dict name -> leaf tuple, or ("dir", mode, subtree)."""
    return st.recursive(
        st.dictionaries(name_st, leaf_st, max_size=4),
        lambda sub: st.dictionaries(name_st, st.one_of(leaf_st, st.tuples(st.just("dir"), modes, sub)), max_size=4),
        max_leaves=max_leaves,
    )


def flatten(tree: dict[str, object], prefix: str = "") -> Iterator[Entry]:
    """Entries of a drawn tree, in no particular order."""
    for name, value in tree.items():
        path = f"{prefix}{name}"
        kind = value[0]  # type: ignore[index]
        if kind == "dir":
            _, mode, sub = value  # type: ignore[misc]
            yield Entry(path, "dir", mode)
            yield from flatten(sub, path + "/")
        elif kind == "file":
            _, mode, size, oid, x = value  # type: ignore[misc]
            yield Entry(path, "file", mode, size, oid, x)
        else:
            _, mode, target = value  # type: ignore[misc]
            yield Entry(path, "symlink", mode, target=target)


def entries_of(tree: dict[str, object]) -> list[Entry]:
    return sorted(flatten(tree), key=lambda e: sort_key(e.path))


valid_entries = trees(names, leaves()).map(entries_of)
# small pools of names and contents, so two drawn trees share many paths and objects
SMALL_NAMES = st.sampled_from(["a", "b", "a b", "a-b", "é", "x\ny"])
SMALL_OIDS = st.sampled_from(["1" * 64, "2" * 64, "3" * 64])
small_leaves = st.one_of(
    st.tuples(st.just("file"), st.sampled_from([0o644, 0o755]), st.just(3), SMALL_OIDS, st.just("0" * 32)),
    st.tuples(st.just("symlink"), st.just(0o777), st.sampled_from(["a", "../b"])),
)
small_entries = trees(SMALL_NAMES, small_leaves, max_leaves=12).map(entries_of)


def raw_manifest(entries: list[Entry], header: bytes = HEADER_LINE) -> bytes:
    """Manifest bytes WITHOUT the writer's checks: how a hostile or buggy publisher could write it."""
    return header + b"".join(encode_entry(e) for e in entries)


def read_all(data: bytes) -> list[Entry]:
    return list(iter_entries(io.BytesIO(data)))


# -- canonical form --------------------------------------------------------------------------------

@PROPS
@given(valid_entries)
def test_canonical_round_trip(entries: list[Entry]) -> None:
    data, oid, stats = build_manifest(entries)
    assert parse_manifest(data) == entries
    assert oid == blake3.blake3(data).hexdigest()  # the id is the hash of exactly these bytes
    assert build_manifest(reversed(entries))[0] == data  # same tree, same bytes, whatever the input order
    assert stats.entries == len(entries)
    assert stats.bytes == sum(e.size for e in entries if e.kind == "file")
    lines = data.split(b"\n")
    assert lines[0] + b"\n" == HEADER_LINE and lines[-1] == b""
    for line in lines[1:-1]:  # sorted keys, no spaces, no ASCII escapes of non-ASCII text
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode()


def test_names_a_file_system_allows_are_valid() -> None:
    odd = ["a b", "new\nline", "tab\there", 'quo"te', "back\\slash", "ünïcødé", "😀", "-dash", ".hidden", "..dots",
           " ", "\x7f", "\u2028"]
    entries = [Entry("d", "dir", 0o755)] + [Entry(f"d/{n}", "file", 0o644, 0, "a" * 64, "b" * 32) for n in odd]
    data, _, _ = build_manifest(entries)
    assert {e.path for e in parse_manifest(data)} == {e.path for e in entries}
    assert "😀".encode() in data and b"\\n" in data  # raw UTF-8; newline escaped, so one entry per line


def test_tree_order_puts_a_directory_before_its_siblings_that_sort_lower_bytewise() -> None:
    paths = ["etc-x", "etc/l", "etc", "etc.d", "etc/hosts", "etc0", "etc/a/b", "etc/a"]
    assert sorted(paths, key=sort_key) == ["etc", "etc/a", "etc/a/b", "etc/hosts", "etc/l", "etc-x", "etc.d", "etc0"]


def test_walk_yields_tree_order_and_never_follows_symlinks(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "root")
    for d in ("etc", "etc/a", "etc-x", "z"):
        os.makedirs(os.path.join(root, d))
    for f in ("etc/hosts", "etc/a/b", "etc.d", "a b"):
        with open(os.path.join(root, f), "w") as fp:
            fp.write("x")
    os.symlink("/", os.path.join(root, "z/root-link"))  # must not be descended into
    paths = [p for p, _ in walk(root)]
    assert paths == sorted(paths, key=sort_key)
    assert paths == ["a b", "etc", "etc/a", "etc/a/b", "etc/hosts", "etc-x", "etc.d", "z", "z/root-link"]


# -- the validator ---------------------------------------------------------------------------------

def hostile(path: str, how: str) -> str:
    parts = path.split("/")
    if how == "dotdot":
        parts.insert(len(parts) - 1, "..")
    elif how == "dot":
        parts.insert(0, ".")
    elif how == "empty":
        parts.insert(len(parts) - 1, "")
    elif how == "trailing":
        parts.append("")
    elif how == "absolute":
        parts.insert(0, "")
    elif how == "nul":
        parts[-1] = parts[-1] + "\x00"
    elif how == "long-name":
        parts[-1] = "n" * 256
    elif how == "long-path":
        parts = ["p" * 200] * 21  # 4220 bytes
    elif how == "surrogate":
        parts[-1] = parts[-1] + "\udc80"
    return "/".join(parts)


HOW = ["dotdot", "dot", "empty", "trailing", "absolute", "nul", "long-name", "long-path", "surrogate"]


@PROPS
@given(st.lists(names, min_size=1, max_size=4), st.sampled_from(HOW))
def test_hostile_paths_are_rejected(parts: list[str], how: str) -> None:
    path = hostile("/".join(parts), how)
    with pytest.raises(ManifestInvalid):
        check_path(path)
    dirs = [Entry("/".join(parts[:i]), "dir", 0o755) for i in range(1, len(parts))]
    bad = Entry(path, "file", 0o644, 1, "a" * 64, "b" * 32)
    with pytest.raises(ManifestInvalid):  # the writer refuses to produce it ...
        ManifestWriter(io.BytesIO()).add_all([*dirs, bad])
    if how != "surrogate":  # (a lone surrogate cannot even be encoded into a manifest line)
        with pytest.raises(ManifestInvalid):  # ... and a reader refuses it when a hostile writer did
            read_all(raw_manifest([*dirs, bad]))


@PROPS
@given(st.lists(names, min_size=1, max_size=4))
def test_valid_paths_are_accepted(parts: list[str]) -> None:
    path = "/".join(parts)
    assume(len(path.encode()) <= 4096)
    assert check_path(path) == path


def corruptions(entries: list[Entry]) -> Iterator[tuple[str, list[Entry]]]:
    """Structurally impossible variants of a valid, sorted entry list."""
    for i, e in enumerate(entries):
        yield "duplicate", entries[: i + 1] + [e] + entries[i + 1:]
    for i in range(len(entries) - 1):
        yield "unsorted", entries[:i] + [entries[i + 1], entries[i]] + entries[i + 2:]
    for i, e in enumerate(entries):
        has_children = i + 1 < len(entries) and entries[i + 1].path.startswith(e.path + "/")
        if e.kind == "dir" and has_children:
            yield "missing parent", entries[:i] + entries[i + 1:]
            yield "below a file", entries[:i] + [Entry(e.path, "file", 0o644, 0, "a" * 64, "b" * 32)] + entries[i + 1:]
            yield "below a symlink", entries[:i] + [Entry(e.path, "symlink", 0o777, target="x")] + entries[i + 1:]


@PROPS
@given(valid_entries.filter(lambda es: len(es) >= 2), st.data())
def test_impossible_structures_are_rejected(entries: list[Entry], data: st.DataObject) -> None:
    what, bad = data.draw(st.sampled_from(list(corruptions(entries))))
    with pytest.raises(ManifestInvalid):
        read_all(raw_manifest(bad))
    with pytest.raises(ManifestInvalid):
        ManifestWriter(io.BytesIO()).add_all(bad)


@pytest.mark.parametrize("entry, why", [
    (Entry("a", "file", 0o644, 1, "A" * 64, "b" * 32), "uppercase id"),
    (Entry("a", "file", 0o644, 1, "a" * 63, "b" * 32), "short id"),
    (Entry("a", "file", 0o644, 1, "a" * 64, None), "no xxh3"),
    (Entry("a", "file", 0o644, -1, "a" * 64, "b" * 32), "negative size"),
    (Entry("a", "file", 0o10000, 1, "a" * 64, "b" * 32), "mode beyond permission bits"),
    (Entry("a", "file", True, 1, "a" * 64, "b" * 32), "boolean mode"),  # type: ignore[arg-type]
    (Entry("a", "file", 0o644, 1, "a" * 64, "b" * 32, target="x"), "file with a target"),
    (Entry("a", "dir", 0o755, size=3), "dir with a size"),
    (Entry("a", "dir", 0o755, xxh="b" * 32), "dir with an xxh3"),
    (Entry("a", "symlink", 0o777, target=""), "empty target"),
    (Entry("a", "symlink", 0o777, target="x\x00y"), "NUL in target"),
    (Entry("a", "symlink", 0o777, target="x" * 4097), "over-long target"),
    (Entry("a", "symlink", 0o777, target="\udc80"), "target not UTF-8"),
    (Entry("a", "symlink", 0o777, oid="a" * 64, target="x"), "symlink with content"),
    (Entry("a", "fifo", 0o644), "unknown kind"),  # type: ignore[arg-type]
])
def test_invalid_entries_are_rejected(entry: Entry, why: str) -> None:
    with pytest.raises(ManifestInvalid):
        check_entry(entry)


def test_symlink_targets_are_data_and_may_point_anywhere() -> None:
    entries = [Entry("l1", "symlink", 0o777, target="/etc/shadow"), Entry("l2", "symlink", 0o777, target="../../..")]
    assert parse_manifest(build_manifest(entries)[0]) == entries


@pytest.mark.parametrize("line, message", [
    (b'{"k":[1],"m":1,"p":"a"}\n', "unknown kind"),
    (b'{"k":"q","m":1,"p":"a"}\n', "unknown kind"),
    (b'{"k":"d","m":493,"p":"a","x":"' + b"b" * 32 + b'"}\n', "unexpected keys"),
    (b'{"k":"f","m":420,"o":"' + b"a" * 64 + b'","p":"a","s":1}\n', "missing keys"),
    (b'{"k":"d","m":493.0,"p":"a"}\n', "invalid mode"),
    (b'{"k":"d","m":493,"p":["a"]}\n', "not a string"),
    (b'["k","d"]\n', "not an object"),
    (b"not json\n", "not JSON"),
    (b"[" * 50_000 + b"\n", "not JSON"),  # nesting deeper than the parser's recursion limit
    (b'{"k":"d","m":493,"p":"\xff"}\n', "not JSON"),
    (b'{"k":"d","m":493,"p":"a"}', "truncated"),
    (b'{"k":"d","m":493,"p":"' + b"a" * MAX_LINE_BYTES + b'"}\n', "longer than"),
])
def test_malformed_lines_are_rejected_with_the_line_number(line: bytes, message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message) as err:
        read_all(HEADER_LINE + b'{"k":"d","m":493,"p":"0"}\n' + line)
    assert "line 3" in str(err.value)


@pytest.mark.parametrize("header, error", [
    (b"", ManifestInvalid),
    (b'{"features":[],"format":1,"type":"regen-manifest"}', ManifestInvalid),  # no newline: truncated
    (b'{"type":"something-else","format":1}\n', ManifestInvalid),
    (b"[" * 50_000 + b"\n", ManifestInvalid),
    (b'{"features":[],"format":3,"type":"regen-manifest"}\n', UnsupportedFormat),
    (b'{"features":["chunks"],"format":1,"type":"regen-manifest"}\n', UnsupportedFormat),
])
def test_bad_headers_are_refused(header: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        read_all(header)


def test_errors_are_one_line_with_a_hint() -> None:
    with pytest.raises(ManifestInvalid) as err:
        check_path("a/../etc/shadow")
    assert "a/../etc/shadow" in err.value.one_line() and "\n" not in err.value.one_line()
    assert err.value.hint and err.value.exit_code == 1


# -- diff -------------------------------------------------------------------------------------------

def model_diff(a: list[Entry], b: list[Entry]) -> list[tuple[str, str]]:
    """What must differ, computed with plain dicts."""
    da, db = {e.path: e for e in a}, {e.path: e for e in b}
    out = []
    for p in da.keys() | db.keys():
        if p not in db:
            out.append(("removed", p))
        elif p not in da:
            out.append(("added", p))
        elif da[p] != db[p]:
            x, y = da[p], db[p]
            same_content = (x.kind, x.oid, x.size, x.xxh, x.target) == (y.kind, y.oid, y.size, y.xxh, y.target)
            out.append(("meta" if same_content else "modified", p))
    return sorted(out, key=lambda c: sort_key(c[1]))


def apply(a: list[Entry], changes: list[Change]) -> dict[str, Entry]:
    state = {e.path: e for e in a}
    for c in changes:
        if c.kind == "removed":
            assert state.pop(c.path) == c.old
        else:
            assert c.new is not None and c.new.path == c.path
            assert state.get(c.path) == c.old
            state[c.path] = c.new
    return state


@PROPS
@given(small_entries, small_entries)
def test_diff_of_any_two_manifests_is_exact(a: list[Entry], b: list[Entry]) -> None:
    changes = list(diff(iter(a), iter(b)))
    assert [(c.kind, c.path) for c in changes] == model_diff(a, b)  # right kinds, in tree order
    assert apply(a, changes) == {e.path: e for e in b}  # applying the changes to A gives B


@PROPS
@given(small_entries, small_entries)
def test_diff_through_stored_form_matches(a: list[Entry], b: list[Entry]) -> None:
    """Diffing the streamed, parsed manifests gives the same changes as diffing the entries."""
    ma, mb = build_manifest(a)[0], build_manifest(b)[0]
    streamed = list(diff(iter_entries(io.BytesIO(ma)), iter_entries(io.BytesIO(mb))))
    assert streamed == list(diff(a, b))


@PROPS
@given(valid_entries)
def test_diff_with_itself_is_empty_and_with_nothing_is_everything(entries: list[Entry]) -> None:
    assert list(diff(entries, entries)) == []
    assert [c.path for c in diff([], entries)] == [e.path for e in entries]
    assert {c.kind for c in diff(entries, [])} <= {"removed"}


def test_mode_only_change_is_meta_and_content_change_is_modified() -> None:
    a = [Entry("f", "file", 0o644, 1, "a" * 64, "b" * 32), Entry("g", "file", 0o644, 1, "a" * 64, "b" * 32)]
    b = [Entry("f", "file", 0o600, 1, "a" * 64, "b" * 32), Entry("g", "file", 0o644, 1, "c" * 64, "d" * 32)]
    assert [(c.kind, c.path) for c in diff(a, b)] == [("meta", "f"), ("modified", "g")]


# -- streaming: bounded memory ---------------------------------------------------------------------

class LazyManifest(io.RawIOBase):
    """A manifest of `n` files produced on demand, never held whole (as a stream from disk would be)."""

    def __init__(self, n: int, variant: int = 0) -> None:
        self._lines = self._gen(n, variant)
        self._buf = b""
        self.produced = 0

    @staticmethod
    def _gen(n: int, variant: int) -> Iterator[bytes]:
        yield HEADER_LINE
        per_dir = 100
        for d in range(0, n, per_dir):
            yield encode_entry(Entry(f"d{d:07d}", "dir", 0o755))
            for i in range(d, min(n, d + per_dir)):
                oid = f"{i * 7 + (variant if i % 100 == 0 else 0):064x}"
                yield encode_entry(Entry(f"d{d:07d}/file {i:07d}", "file", 0o644, i, oid, f"{i:032x}"))

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while len(self._buf) < len(b):
            line = next(self._lines, None)
            if line is None:
                break
            self._buf += line
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        self.produced += n
        return n


def test_reading_a_manifest_yields_before_it_is_all_read() -> None:
    raw = LazyManifest(50_000)
    it = iter_entries(io.BufferedReader(raw))
    first = next(it)
    assert first.path == "d0000000"
    assert raw.produced < 64 * 1024  # an 8 MB manifest, and only a buffer's worth was read


def test_reading_and_diffing_big_manifests_takes_bounded_memory() -> None:
    n = 5_000  # about 0.8 MB of manifest each; materialised, one would take over 2 MB
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_entries(io.BufferedReader(LazyManifest(n))))
        _, peak_read = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        kinds = Counter(c.kind for c in diff(iter_entries(io.BufferedReader(LazyManifest(n))),
                                             iter_entries(io.BufferedReader(LazyManifest(n, variant=1)))))
        _, peak_diff = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n + n // 100
    assert kinds == {"modified": n // 100}
    assert peak_read < 256 * 1024, peak_read
    assert peak_diff < 256 * 1024, peak_diff


def test_the_longest_valid_entry_fits_in_a_line() -> None:
    """Path and target at their byte limits, every byte escaped 6-fold, still under the line limit."""
    parts = ["\x01" * 255] * 16  # 4095 bytes of path
    entries = [Entry("/".join(parts[:i]), "dir", 0o755) for i in range(1, 16)]
    entries.append(Entry("/".join(parts), "symlink", 0o777, target="\x02" * 4096))
    data, _, _ = build_manifest(entries)
    assert max(len(line) for line in data.split(b"\n")) > 45_000
    assert parse_manifest(data) == entries


# -- line-level delta (what an update plans from) ---------------------------------------------------

@PROPS
@given(small_entries, small_entries)
def test_delta_of_any_two_manifests_is_what_changed(a: list[Entry], b: list[Entry]) -> None:
    ma, mb = build_manifest(a)[0], build_manifest(b)[0]
    d = manifest_delta(io.BytesIO(ma), io.BytesIO(mb))
    in_a, in_b = set(a), set(b)
    assert d.added == [e for e in b if e not in in_a]  # tree order, every new or changed entry
    assert d.removed == [e.path for e in a if e not in in_b]
    assert d.objects == {e.oid: e.size for e in b if e.kind == "file"}
    assert d.entries == len(b)
    same = manifest_delta(io.BytesIO(mb), io.BytesIO(mb))
    assert same.added == [] and same.removed == []


@PROPS
@given(valid_entries.filter(lambda es: len(es) >= 2), st.data())
def test_delta_refuses_what_a_full_read_refuses(entries: list[Entry], data: st.DataObject) -> None:
    # the old manifest holds every line of the bad one: none of them is decoded as an entry, yet
    # the bad structure (order, duplicates, parents) is refused as iter_entries refuses it
    what, bad = data.draw(st.sampled_from(list(corruptions(entries))))
    good = build_manifest(entries)[0]
    with pytest.raises(ManifestInvalid):
        manifest_delta(io.BytesIO(good), io.BytesIO(raw_manifest(bad)))


@pytest.mark.parametrize("line, message", [
    (b'{"k":"f","m":420,"o":"' + b"1" * 64 + b'","p":"../x","s":1,"x":"' + b"0" * 32 + b'"}', "not normalized"),
    (b'{"k":"d","m":493,"p":"/etc"}', "absolute"),
    (b'{"k":"d","m":493,"p":"a","extra":1}', "unexpected keys"),
    (b"not json", "not JSON"),
])
def test_delta_validates_every_new_line(line: bytes, message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        manifest_delta(io.BytesIO(HEADER_LINE), io.BytesIO(HEADER_LINE + line + b"\n"))
    with pytest.raises(ManifestInvalid):
        manifest_delta(io.BytesIO(HEADER_LINE), io.BytesIO(HEADER_LINE + b'{"k":"d","m":493,"p":"a"}'))  # truncated
    with pytest.raises(UnsupportedFormat):
        manifest_delta(io.BytesIO(HEADER_LINE), io.BytesIO(HEADER_LINE.replace(b'"format":1', b'"format":9')))


@PROPS
@given(valid_entries)
def test_a_trusted_read_gives_the_same_entries(entries: list[Entry]) -> None:
    data = build_manifest(entries)[0]
    assert list(iter_entries(io.BytesIO(data), trusted=True)) == entries
    with pytest.raises(ManifestInvalid, match="line 2"):  # (damage is still an error, not a crash)
        list(iter_entries(io.BytesIO(HEADER_LINE + b'{"k":"q"}\n'), trusted=True))
