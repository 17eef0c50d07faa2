"""Light on the server, asserted on the real servers' side.

A client with nothing to do reads the channel's ref and nothing else (one small GET, no
LIST, no HEAD); an update reads the ref, asks for the host's overlay record, reads the new
manifest and exactly the objects its cache lacks, each once; a corrupted or truncated object
is refused by its hash, asked for once more, then reported, and no byte of it reaches the
tree. s3 and http count requests in the servers' logs; on smb, sftp and file the store's
files on the server's disk show which were read (atimes) and written.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from regen.store import Backend, layout, object_id, open_backend
from regen.store.errors import EXIT_DAMAGED
from tests.conftest import make_tree

from .conftest import CHANNEL, Site, Traffic, Wire

GEN1 = {f"srv/app/part-{i}.txt": f"part {i} of the application\n" * 20 for i in range(12)}
GEN1.update({"srv/app/config.toml": "workers = 4\n", "srv/data/table.bin": bytes(range(256)) * 300})
# generation 2: three new contents, one file copied from content the client has, one removed
GEN2_CHANGES = {"srv/app/part-1.txt": "part one, rewritten\n", "srv/app/config.toml": "workers = 8\n",
                "srv/app/extra.txt": "an extra file\n" * 50, "srv/app/copy-of-part-2.txt": GEN1["srv/app/part-2.txt"]}
GEN2_REMOVED = ("srv/app/part-3.txt",)
NEW_CONTENTS = [GEN2_CHANGES[p] for p in ("srv/app/part-1.txt", "srv/app/config.toml", "srv/app/extra.txt")]
POLICY = 'junk = "quarantine"\n'


def _obj(oid: str) -> str:
    return layout.object_path(oid)


def _samba_lookups(s: Site, t: Traffic, *folders: str) -> bool:
    """Samba (case sensitive = auto, its default) scans a folder itself when asked for a name it
    lacks: where a report file is created, and the store's root for the absent hosts/ of an overlay
    lookup. Those are not LIST requests of regen's: reading a file that exists scans nothing."""
    return s.target.scheme == "smb" and set(t.lists) <= set(folders)


@pytest.fixture
def installed(backend_site: Site, request: pytest.FixtureRequest) -> tuple[Site, Wire]:
    """Generation 1 published and installed on the client; the server's traffic watched."""
    s = backend_site
    s.create()
    (s.tmp / "policy.toml").write_text(POLICY)
    make_tree(s.ref, GEN1)
    s.snapshot("generation 1")
    s.install_client()
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    return s, Wire.of(s.target, request)


def _publish_generation_2(s: Site) -> str:
    make_tree(s.ref, GEN2_CHANGES)
    for p in GEN2_REMOVED:
        (s.ref / p).unlink()
    return str(s.snapshot("generation 2")["manifest"])


@pytest.fixture
def admin(installed: tuple[Site, Wire]) -> Iterator[Backend]:
    """The store as the administrator reaches it (to look at and damage it)."""
    s = installed[0]
    backend = open_backend(s.target.write_url, dict(s.target.write_options))
    yield backend
    backend.close()


def test_a_run_with_nothing_to_do_reads_only_the_ref(installed: tuple[Site, Wire], admin: Backend) -> None:
    s, wire = installed
    for i in range(2):
        wire.mark()
        report, _ = s.run_once()
        assert report["outcome"] == "ok" and report["bytes_fetched"] == 0, report
        t = wire.since()
        assert t.reads == [f"refs/{CHANNEL}"], t
        assert admin.stat(f"refs/{CHANNEL}").size < 2048  # a small one
        assert t.lists == [] or _samba_lookups(s, t, f"reports/{s.host}"), t
        assert t.heads == [] and t.other == [], t
        if s.target.read_only:
            assert t.writes == []
        else:  # latest.json, and a history entry only when the state changed (updated -> ok; issue 16)
            assert len(t.writes) == (2 if i == 0 else 1) and f"reports/{s.host}/latest.json" in t.writes, t
            assert all(w.startswith(f"reports/{s.host}/") for w in t.writes), t


def test_an_update_reads_exactly_the_missing_objects(installed: tuple[Site, Wire]) -> None:
    s, wire = installed
    manifest = _publish_generation_2(s)
    wire.mark()
    report, _ = s.run_once()
    assert report["outcome"] == "updated" and report["generation_after"] == 2, report
    s.assert_converged()
    t = wire.since()
    new = {_obj(object_id(c.encode())) for c in NEW_CONTENTS}
    assert report["actions"]["objects_fetched"] == len(new), report["actions"]
    assert report["bytes_fetched"] == sum(len(c.encode()) for c in NEW_CONTENTS), report
    object_reads = [r for r in t.reads if r.startswith("objects/")]
    assert sorted(object_reads) == sorted(new | {_obj(manifest)}), t  # each once: the manifest and the 3 new
    assert t.lists == [] or _samba_lookups(s, t, f"reports/{s.host}", "."), t
    assert t.heads == [] and t.other == [], t
    if wire.logged:  # the overlay record is asked for (absent here: a 404) with a new generation
        assert sorted(r for r in t.reads if not r.startswith("objects/")) == \
            sorted([f"refs/{CHANNEL}", f"hosts/{s.host}/overlay.json"]), t
    else:
        assert [r for r in t.reads if not r.startswith("objects/")] == [f"refs/{CHANNEL}"], t


def test_a_corrupt_object_is_refused_retried_once_and_reported(installed: tuple[Site, Wire], admin: Backend) -> None:
    s, wire = installed
    _publish_generation_2(s)
    corrupt, truncated, good = (object_id(c.encode()) for c in NEW_CONTENTS)
    originals = {oid: admin.read(_obj(oid)) for oid in (corrupt, truncated)}
    evil = NEW_CONTENTS[0].upper().encode()  # as long as the real content: only its hash tells
    admin.write(_obj(corrupt), b"r" + evil)                                 # well formed, wrong content
    admin.write(_obj(truncated), originals[truncated][: len(originals[truncated]) // 2])  # cut short
    before = s.client_tree()

    wire.mark()
    report, res = s.run_once(exit_code=None)
    t = wire.since()
    # the update is refused as a whole: the tree stays at generation 1, nothing of the bad bytes in it
    assert report["generation_after"] == 1 and report["outcome"] == "failing", report
    assert s.client_tree() == before
    local = [p for p in (*s.root.rglob("*"), *s.state.rglob("*")) if p.is_file() and not p.is_symlink()]
    assert not [p for p in local if evil in p.read_bytes()], "corrupt bytes were kept"  # tree, cache, temp files
    errors = " ".join(report["errors"])
    assert "update" in errors and "2 of 3 objects could not be fetched" in errors, report["errors"]
    if wire.logged:
        reads = [r for r in t.reads if r.startswith("objects/")]
        assert reads.count(_obj(corrupt)) == 2 and reads.count(_obj(truncated)) == 2, t  # retried once
        assert reads.count(_obj(good)) == 1, t
    # documented: a damaged store is an error in the report, not a reason to stop the machine (exit 12,
    # a success for the boot unit), and the report says so
    assert res.returncode == report["exit_code"] == EXIT_DAMAGED, res.stderr
    assert report["store_state"] == "damaged"
    if not s.target.read_only:  # the administrator sees it: the host is failing on the damaged object
        host = {h["host"]: h for h in s.fleet()["hosts"]}[s.host]
        assert host["state"] == "failing" and host["generation"] == 1, host
        assert any(corrupt in e or truncated in e for e in host["errors"]), host

    # the administrator repairs the store: the next run fetches only what it still lacks
    for oid, data in originals.items():
        admin.write(_obj(oid), data)
    wire.mark()
    report, _ = s.run_once()
    assert report["outcome"] == "updated" and report["generation_after"] == 2, report
    s.assert_converged()
    assert report["actions"]["objects_fetched"] == 2, report["actions"]
    t = wire.since()
    assert sorted(r for r in t.reads if r.startswith("objects/")) == sorted([_obj(corrupt), _obj(truncated)]), t
