"""Big files in a packed store are content-defined chunks: changing 1 MiB in the middle of a big
file costs the client about that MiB (plus chunk-boundary slack), counted by the web server, and
the client rebuilds the new version from the chunks it already holds plus the fetched ones."""

from __future__ import annotations

import random
import shutil

import pytest

from tests.conftest import make_tree

from .conftest import Site

BIG = 32 << 20  # 256 MiB in contrib/bench.sh; 32 MiB keeps the test quick


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_one_mib_changed_in_a_big_file_fetches_about_one_mib(scheme: str, request: pytest.FixtureRequest,
                                                              tmp_path) -> None:
    target = request.getfixturevalue(f"{scheme}_target")
    s = Site(target, tmp_path, f"host-{scheme}")
    s.create("--packs")
    rng = random.Random(11)
    big = bytearray(rng.randbytes(BIG))
    make_tree(s.ref, {"var/lib/image.bin": bytes(big), "etc/small.conf": b"x = 1\n"})
    s.snapshot("generation 1")
    s.install_client()
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    big[BIG // 2: BIG // 2 + (1 << 20)] = rng.randbytes(1 << 20)
    make_tree(s.ref, {"var/lib/image.bin": bytes(big)})
    s.snapshot("generation 2")
    before = _sent(s)
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    fetched = _sent(s) - before
    print(f"{scheme}: 1 MiB changed in {BIG >> 20} MiB: {fetched} bytes fetched")
    assert fetched <= 2 << 20, fetched  # not 32 MiB: the changed MiB, a chunk around it, the manifest, index


def _sent(s: Site) -> int:
    """Body bytes the server sent for this store (its request log counts them)."""
    assert s.target.log is not None
    return s.target.log.bytes_sent(s.target.prefix)


@pytest.mark.slow
@pytest.mark.parametrize("lost", ["cache", "migrate"])
def test_the_installed_file_seeds_the_update_without_a_kept_chunk_list(lost: str, http_target, tmp_path) -> None:
    """No chunk list of the installed version is kept -- the client's cache was lost, or the store was
    loose when the client installed and `regen migrate` packed it since -- yet the update fetches only
    the changed chunks: the client cuts the installed file in the tree and reuses its chunks (verified)."""
    s = Site(http_target, tmp_path, f"host-{lost}")
    s.create(*(["--packs"] if lost == "cache" else []))
    rng = random.Random(12)
    size = 12 << 20
    big = bytearray(rng.randbytes(size))
    make_tree(s.ref, {"var/lib/image.bin": bytes(big), "etc/small.conf": b"x = 1\n"})
    s.snapshot("generation 1")
    s.install_client()
    assert s.run_once()[0]["outcome"] == "updated"
    if lost == "cache":
        shutil.rmtree(s.state / "objects")
        shutil.rmtree(s.state / "packindex" / "chunklists")
    else:
        s.regen("migrate")
    big[size // 2: size // 2 + (256 << 10)] = rng.randbytes(256 << 10)
    make_tree(s.ref, {"var/lib/image.bin": bytes(big)})
    s.snapshot("generation 2")
    before = _sent(s)
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    fetched = _sent(s) - before
    assert fetched <= 2 << 20, fetched  # not 12 MiB: the changed chunks, the manifest, the index
