"""Manifest format 2: owners, names, mtimes, xattrs/ACLs, hard-link groups, device nodes, FIFOs,
sparse files -- canonical form, validation, diff and delta (pure)."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regen.store import Entry, ManifestInvalid, build_manifest, diff, iter_entries, manifest_delta, parse_manifest
from regen.store.manifest import FORMAT_META, ManifestWriter, encode_entry, header_line

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OID = "64" + "37b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
XXH = "06b05ab6733a618578af5f94892f3950"
ACL = bytes.fromhex("0200000001000600ffffffff02000600e803000004000400ffffffff10000600ffffffff20000400ffffffff")
CAP = bytes.fromhex("0100000200200000000000000000000000000000")

names = st.text(st.characters(min_codepoint=0x20, blacklist_characters=":/\x7f", blacklist_categories=("Cs",)),
                min_size=1, max_size=12)
xattr_names = st.sampled_from(["user.a", "user.b\u00e9", "security.capability", "system.posix_acl_access",
                               "system.posix_acl_default", "trusted.x", "security.selinux"])
xattrs = st.dictionaries(xattr_names, st.binary(max_size=40), max_size=4).map(lambda d: tuple(sorted(d.items())))
ids = st.integers(0, (1 << 32) - 1)
mtimes = st.integers(-(1 << 63), (1 << 63) - 1)


@st.composite
def meta_entries(draw: st.DrawFn) -> list[Entry]:
    """A small tree with every format-2 kind and field, in no particular order."""
    out: list[Entry] = [Entry("d", "dir", 0o755, uid=draw(ids), gid=draw(ids), mtime=draw(mtimes))]
    n = draw(st.integers(0, 6))
    for i in range(n):
        common = dict(uid=draw(ids), gid=draw(ids), user=draw(st.none() | names), group=draw(st.none() | names),
                      mtime=draw(mtimes), xattrs=draw(xattrs))
        kind = draw(st.sampled_from(["file", "symlink", "fifo", "chardev", "blockdev"]))
        path = f"d/{i}"
        if kind == "file":
            out.append(Entry(path, "file", draw(st.integers(0, 0o7777)), draw(st.integers(0, 1 << 40)), OID, XXH,
                             sparse=draw(st.booleans()), **common))
        elif kind == "symlink":
            out.append(Entry(path, "symlink", 0o777, target="x", **common))
        elif kind == "fifo":
            out.append(Entry(path, "fifo", 0o644, **common))
        else:
            out.append(Entry(path, kind, 0o660, rdev=(draw(ids), draw(ids)), **common))  # type: ignore[arg-type]
    if draw(st.booleans()):  # a hard-link group of three
        first = Entry("d/l0", "file", 0o4755, 3, OID, XXH, uid=0, gid=5, user="root", group="tty", mtime=7,
                      xattrs=(("security.capability", CAP),), link="d/l0")
        out += [first] + [Entry(f"d/l{i}", "file", 0o4755, 3, OID, XXH, uid=0, gid=5, user="root", group="tty",
                                mtime=7, xattrs=(("security.capability", CAP),), link="d/l0") for i in (1, 2)]
    return out


@PROPS
@given(meta_entries())
def test_format2_round_trip_is_canonical(entries: list[Entry]) -> None:
    data, oid, _ = build_manifest(entries)
    assert data.startswith(b'{"features":[],"format":2,"type":"regen-manifest"}\n')
    back = parse_manifest(data)
    assert sorted(back, key=lambda e: e.path) == sorted(entries, key=lambda e: e.path)
    for line in data.splitlines()[1:]:  # each line is exactly json.dumps(sort_keys, compact, raw UTF-8)
        assert line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode()
    assert build_manifest(back)[1] == oid
    assert list(iter_entries(io.BytesIO(data), trusted=True)) == back


def test_format2_line_documents_every_field() -> None:
    e = Entry("usr/bin/ping", "file", 0o755, 3, OID, XXH, uid=0, gid=0, user="root", group="root",
              mtime=1_700_000_000_123_456_789, xattrs=(("security.capability", CAP),))
    assert encode_entry(e) == (
        b'{"G":"root","T":1700000000123456789,"U":"root","a":{"security.capability":"AQAAAgAgAAAAAAAAAAAAAAAAAAA="},'
        b'"g":0,"k":"f","m":493,"o":"' + OID.encode() + b'","p":"usr/bin/ping","s":3,"u":0,"x":"' + XXH.encode()
        + b'"}\n')
    dev = Entry("dev/null", "chardev", 0o666, uid=0, gid=0, mtime=0, rdev=(1, 3))
    assert encode_entry(dev) == b'{"T":0,"g":0,"k":"c","m":438,"p":"dev/null","r":[1,3],"u":0}\n'


def test_format1_stays_readable_and_is_written_for_plain_entries() -> None:
    plain = [Entry("a", "dir", 0o755), Entry("a/f", "file", 0o644, 3, OID, XXH)]
    data, _, _ = build_manifest(plain)
    assert data.startswith(b'{"features":[],"format":1,')
    assert parse_manifest(data) == plain


def _manifest(*lines: bytes) -> bytes:
    return header_line(FORMAT_META) + b"".join(line + b"\n" for line in lines)


D = b'{"T":0,"g":0,"k":"d","m":493,"p":"d","u":0}'


@pytest.mark.parametrize("line, message", [
    (b'{"k":"d","m":493,"p":"e"}', "missing keys"),                                   # format 2 needs u, g, T
    (b'{"T":0,"g":0,"k":"d","m":493,"p":"e","u":-1}', "uid"),
    (b'{"T":0,"g":4294967296,"k":"d","m":493,"p":"e","u":0}', "gid"),
    (b'{"T":0.5,"g":0,"k":"d","m":493,"p":"e","u":0}', "mtime"),
    (b'{"T":0,"U":"a:b","g":0,"k":"d","m":493,"p":"e","u":0}', "user name"),
    (b'{"T":0,"a":{"user.x":"!!"},"g":0,"k":"d","m":493,"p":"e","u":0}', "base64"),
    (b'{"T":0,"a":{"user.x":"YQ"},"g":0,"k":"d","m":493,"p":"e","u":0}', "base64"),
    (b'{"T":0,"a":{},"g":0,"k":"d","m":493,"p":"e","u":0}', "extended attributes"),
    (b'{"T":0,"a":{"nodot":"YQ=="},"g":0,"k":"d","m":493,"p":"e","u":0}', "attribute name"),
    (b'{"T":0,"a":{"user.b":"YQ==","user.a":"YQ=="},"g":0,"k":"d","m":493,"p":"e","u":0}', "order"),
    (b'{"T":0,"g":0,"k":"c","m":438,"p":"e","u":0}', "missing keys"),                 # a device needs r
    (b'{"T":0,"g":0,"k":"c","m":438,"p":"e","r":[1],"u":0}', "device number"),
    (b'{"T":0,"g":0,"k":"p","m":438,"p":"e","r":[1,3],"u":0}', "unexpected keys"),
    (b'{"T":0,"g":0,"h":"e","k":"l","m":511,"p":"e","t":"x","u":0}', "unexpected keys"),  # only files link
    (b'{"T":0,"g":0,"k":"f","m":420,"o":"' + OID.encode() + b'","p":"e","s":3,"u":0,"x":"' + XXH.encode()
     + b'","z":false}', "sparse"),
    (b'{"T":0,"g":0,"h":"z","k":"f","m":420,"o":"' + OID.encode() + b'","p":"e","s":3,"u":0,"x":"'
     + XXH.encode() + b'"}', "first member"),
])
def test_invalid_format2_lines_are_refused(line: bytes, message: str) -> None:
    with pytest.raises(ManifestInvalid, match=message):
        parse_manifest(_manifest(D, line))


def _file(path: str, **kw: object) -> Entry:
    base: dict[str, object] = dict(uid=0, gid=0, mtime=1)
    base.update(kw)
    return Entry(path, "file", 0o644, 3, OID, XXH, **base)  # type: ignore[arg-type]


def test_link_groups_are_checked_across_lines() -> None:
    top = Entry("d", "dir", 0o755, uid=0, gid=0, mtime=0)
    good = [top, _file("d/a", link="d/a"), _file("d/b", link="d/a"), _file("d/c", link="d/a")]
    assert parse_manifest(build_manifest(good)[0]) == good
    with pytest.raises(ManifestInvalid, match="differs"):
        build_manifest([top, _file("d/a", link="d/a"), _file("d/b", link="d/a", uid=5)])
    data = header_line(FORMAT_META) + b"".join(encode_entry(e) for e in (top, _file("d/a"), _file("d/b", link="d/a")))
    with pytest.raises(ManifestInvalid, match="first member"):
        parse_manifest(data)


def test_a_format2_writer_refuses_entries_without_owner_and_format1_refuses_metadata() -> None:
    with pytest.raises(ManifestInvalid, match="no owner"):
        ManifestWriter(io.BytesIO(), FORMAT_META).add(Entry("a", "dir", 0o755))
    with pytest.raises(ManifestInvalid, match="format-2"):
        ManifestWriter(io.BytesIO()).add(Entry("a", "dir", 0o755, uid=0, gid=0, mtime=0))


def test_diff_and_delta_see_owner_xattr_time_and_link_changes() -> None:
    top = Entry("d", "dir", 0o755, uid=0, gid=0, mtime=0)
    old = [top, _file("d/a", link="d/a"), _file("d/b", link="d/a"), _file("d/c"), _file("d/e")]
    new = [top, _file("d/a", link="d/a"), _file("d/b"), _file("d/c", uid=1000, user="u"),
           _file("d/e", xattrs=(("security.capability", CAP),), mtime=2)]
    changes = {c.path: c.kind for c in diff(old, new)}
    assert changes == {"d/b": "meta", "d/c": "meta", "d/e": "meta"}
    delta = manifest_delta(io.BytesIO(build_manifest(old)[0]), io.BytesIO(build_manifest(new)[0]))
    assert [e.path for e in delta.added] == ["d/b", "d/c", "d/e"]
    assert sorted(delta.removed) == ["d/b", "d/c", "d/e"]
    assert delta.objects == {OID: 3}


def test_device_number_change_is_a_content_change() -> None:
    a = Entry("n", "chardev", 0o600, uid=0, gid=0, mtime=0, rdev=(1, 3))
    b = Entry("n", "chardev", 0o600, uid=0, gid=0, mtime=0, rdev=(1, 5))
    assert [c.kind for c in diff([a], [b])] == ["modified"]


def test_the_format2_example_in_format_md_is_valid() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "store" / "FORMAT.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```\n(.*?)```", text, flags=re.S) if '"format":2' in b.splitlines()[0])
    entries = parse_manifest(block.encode())
    assert [e.kind for e in entries] == ["dir", "chardev", "file", "file"]
    assert entries[3].link == "bin/ping" and entries[2].xattrs == (("security.capability", CAP),)
    assert build_manifest(entries)[0] == block.encode()  # canonical as written
