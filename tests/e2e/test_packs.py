"""A packed store (`regen init --packs`) on every backend: a first install reads a few pack ranges
instead of one object per file, an update reads only the new blobs' ranges, and what arrives is
the reference tree byte for byte. Requests are counted by the servers (s3, http) or by the
client's own counters (smb, sftp, file: the report's fetch counters come from the backend).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.servers import Target

from .conftest import Site

FILES = 150
GEN1 = {f"srv/app/part-{i:03d}.txt": f"part {i} of the application\n".encode() * (5 + i % 40) for i in range(FILES)}
GEN1["srv/data/blob.bin"] = random.Random(3).randbytes(300_000)
GEN2 = {"srv/app/part-007.txt": b"part seven, rewritten\n", "srv/app/new.txt": b"a new file\n" * 30}


def _gets(s: Site, mark: int) -> list[str]:
    assert s.target.log is not None
    return [p for m, p in s.target.requests(mark) if m == "GET"]


@pytest.mark.slow
def test_packed_store_installs_and_updates_with_few_requests(backend_site: Site) -> None:
    s = backend_site
    s.create("--packs", "--pack-size", "65536")
    make_tree(s.ref, GEN1)
    s.snapshot("generation 1")
    s.install_client()
    mark = s.target.log.mark() if s.target.log else 0
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    if s.target.log is not None:
        gets = _gets(s, mark)
        # regen.json, ref, overlay, manifest, index list, index, ~8 packs' ranges (64 KiB packs), report
        # files are PUTs: far fewer than one GET per file
        assert len(gets) <= 25, gets
        assert not any("/objects/" in p and "manifest" not in p for p in gets[4:] if "/packs/" in p)
        assert sum("/packs/" in p for p in gets) >= 1
    make_tree(s.ref, GEN2)
    s.snapshot("generation 2")
    mark = s.target.log.mark() if s.target.log else 0
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    if s.target.log is not None:
        gets = _gets(s, mark)
        packs = [p for p in gets if "/packs/" in p]
        assert len(packs) == 1, gets  # the two new blobs lie side by side in one new pack: one ranged read
        assert len(gets) <= 8, gets  # ref, overlay, manifest, index list, new index, one range


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["file", "http"])
def test_migrate_packs_a_loose_store_and_clients_keep_updating(scheme: str, request: pytest.FixtureRequest,
                                                                tmp_path: Path) -> None:
    s = Site(request.getfixturevalue(f"{scheme}_target"), tmp_path, f"host-{scheme}")
    s.create()  # a format-1 store of loose objects, as every store before packs
    make_tree(s.ref, GEN1)
    s.snapshot("generation 1")
    s.install_client()
    assert s.run_once()[0]["outcome"] == "updated"
    store_dir = Path(s.target.write_url.removeprefix("file://"))
    loose = len([p for p in (store_dir / "objects").rglob("*") if p.is_file()])
    result = json.loads(s.regen("migrate", "--pack-size", "65536", "--json").stdout)
    assert result["packed"] == loose and result["loose_deleted"] == loose and not result["was_packed"]
    assert json.loads((store_dir / "regen.json").read_text())["features"] == ["packs"]
    assert not [p for p in (store_dir / "objects").rglob("*") if p.is_file()]
    assert json.loads(s.regen("fsck", "--key", str(s.key), "--json").stdout)["damaged"] is False
    make_tree(s.ref, GEN2)
    s.snapshot("generation 2")  # new objects go into packs now
    report, _ = s.run_once()  # the client cached the unpacked configuration: it notices and reads packs
    assert report["outcome"] == "updated", (report["errors"], report["warnings"])
    s.assert_converged()
    again = json.loads(s.regen("migrate", "--json").stdout)
    assert again["was_packed"] and again["packed"] == 1  # generation 2's manifest: snapshots write manifests loose


def _pack_sizes(store_dir: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in (store_dir / "packs").rglob("*") if p.is_file()}


@pytest.mark.slow
def test_update_of_a_big_tree_reads_little_more_than_its_new_content(http_target: Target, tmp_path: Path) -> None:
    """A 1% update of a 2,000-file tree over HTTP: the client holds the previous manifest, so it reads
    the manifest's line patch, not the whole manifest; server-side bytes <= 1.05x the new packs' size
    plus a few KiB of records and index (the whole manifest alone would be ~3x the new content)."""
    s = Site(http_target, tmp_path, "host-big")
    s.create("--packs")
    rng = random.Random(15)
    files = {f"srv/d{i // 100:02d}/f{i:05d}": rng.randbytes(rng.randint(1024, 8192)) for i in range(2000)}
    make_tree(s.ref, files)
    s.snapshot("generation 1")
    s.install_client()
    assert s.run_once()[0]["outcome"] == "updated"
    store_dir = Path(s.target.write_url.removeprefix("file://"))
    before = _pack_sizes(store_dir)
    make_tree(s.ref, {p: rng.randbytes(rng.randint(1024, 8192)) for p in rng.sample(sorted(files), 20)})
    s.snapshot("1% changed")
    new_content = sum(n for p, n in _pack_sizes(store_dir).items() if p not in before)
    assert s.target.log is not None
    sent = s.target.log.bytes_sent(s.target.prefix)
    mark = s.target.log.mark()
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    read = s.target.log.bytes_sent(s.target.prefix) - sent
    gets = _gets(s, mark)
    assert any("/patches/" in p for p in gets), gets
    assert not any("/objects/" in p for p in gets), gets  # the manifest itself is not read
    assert read <= 1.05 * new_content + 16_384, (read, new_content, gets)


@pytest.mark.slow
def test_a_forged_manifest_patch_is_ignored_and_the_manifest_read_whole(http_target: Target, tmp_path: Path) -> None:
    """The patch is not signed: one that makes other bytes than the signed manifest id (here: a patch
    re-targeted to insert a file the publisher never shipped) is dropped and the manifest read whole."""
    from regen.store.mpatch import lines_of, make_patch
    from regen.store.objects import encode

    s = Site(http_target, tmp_path, "host-forged")
    s.create("--packs")
    files = {f"srv/d{i // 100:02d}/f{i:05d}": f"file {i}\n".encode() for i in range(800)}
    make_tree(s.ref, files)
    s.snapshot("generation 1")
    s.install_client()
    assert s.run_once()[0]["outcome"] == "updated"
    make_tree(s.ref, {"srv/d00/f00000": b"changed\n"})
    s.snapshot("generation 2")
    store_dir = Path(s.target.write_url.removeprefix("file://"))
    (patch_file,) = [p for p in (store_dir / "patches").rglob("*") if p.is_file()]
    target = patch_file.parent.name + patch_file.name
    base_id = next(p.name for p in (s.state / "manifests").iterdir() if len(p.name) == 64)
    base = (s.state / "manifests" / base_id).read_bytes()
    forged = b"".join(line.replace(b"srv/d07/f00799", b"srv/d07/f00799x") for line in lines_of(base))
    patch_file.write_bytes(encode(make_patch(base_id, base, target, forged)))
    assert s.target.log is not None
    mark = s.target.log.mark()
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    gets = _gets(s, mark)
    assert any("/patches/" in p for p in gets) and any(f"/objects/{target[:2]}/" in p for p in gets), gets
    assert not (s.root / "srv/d07/f00799x").exists()
