"""store/FORMAT.md is what other clients are written from: its examples must be exactly right."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import blake3

from regen.store import (
    Entry,
    Generation,
    Policy,
    SecretKey,
    build_manifest,
    layout,
    object_id,
    parse_manifest,
    sign_envelope,
    trust_map,
    verify_generation,
    xxh,
)
from regen.store.manifest import MAX_LINE_BYTES, MAX_TARGET_BYTES
from regen.store.paths import MAX_NAME_BYTES, MAX_PATH_BYTES
from regen.store.signing import MAX_RECORD_BYTES

FORMAT = (Path(__file__).resolve().parents[2] / "store" / "FORMAT.md").read_text(encoding="utf-8")
SEED_KEY = SecretKey(bytes(range(32)))  # "the secret key whose 32-byte seed is 00 01 02 … 1f"


def code_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", FORMAT, flags=re.S)


def block_starting(prefix: str) -> str:
    return next(b for b in code_blocks() if b.startswith(prefix))


def test_manifest_example_is_canonical_and_its_id_is_right() -> None:
    text = block_starting('{"features":[],"format":1,"type":"regen-manifest"}')
    data = text.encode()
    entries = [
        Entry("etc", "dir", 0o755),
        Entry("etc/hosts", "file", 0o644, 3, object_id(b"abc"), xxh(b"abc")),
        Entry("etc/l", "symlink", 0o777, target="hosts"),
        Entry("etc-x", "dir", 0o700),
    ]
    assert build_manifest(entries)[0] == data
    assert parse_manifest(data) == entries
    stated = re.search(r"Its id .*?is\s+`([0-9a-f]{64})`", FORMAT, flags=re.S)
    assert stated is not None and stated.group(1) == blake3.blake3(data).hexdigest()


def test_envelope_example_is_what_regen_signs_and_verifies() -> None:
    text = block_starting('{"signatures":').strip()
    manifest = block_starting('{"features":[],"format":1,"type":"regen-manifest"}').encode()
    gen = Generation("0123456789abcdef0123456789abcdef", "stable", 1, blake3.blake3(manifest).hexdigest(),
                     "2025-01-02T03:04:05Z", None, "first", Policy(preserve=("home",)),
                     {"bytes": 3, "dirs": 2, "entries": 4, "files": 1, "symlinks": 1})
    assert sign_envelope(gen.to_record(), [SEED_KEY]).decode().strip() == text
    assert verify_generation(text.encode(), trust_map([SEED_KEY.public]), store_id=gen.store_id, channel="stable",
                             now=datetime(2025, 1, 3, tzinfo=timezone.utc)) == gen


def test_stated_digests_and_paths() -> None:
    assert f"objects/{object_id(b'abc')[:2]}/{object_id(b'abc')[2:]}" in FORMAT
    assert layout.object_path(object_id(b"abc")) in FORMAT
    assert xxh(b"abc") in FORMAT
    assert f"`{layout.generation_path('stable', 1)}`" in FORMAT
    stamp = layout.report_path("pc-01", datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc))
    assert stamp == "reports/pc-01/20250102T030405123456Z.json" and "20250102T030405123456Z" in FORMAT
    for path in (layout.CONFIG, layout.LOCK, layout.ref_path("x").rsplit("/", 1)[0] + "/<channel>",
                 layout.overlay_path("h").replace("/h/", "/<host>/"), layout.report_latest_path("h").replace("/h/", "/<host>/")):
        assert path in FORMAT, path


def test_stated_limits_match_the_code() -> None:
    assert MAX_PATH_BYTES == 4096 and "4096 bytes long" in FORMAT
    assert MAX_NAME_BYTES == 255 and "255 bytes" in FORMAT
    assert MAX_TARGET_BYTES == 4096 and "at most 4096 UTF-8 bytes" in FORMAT
    assert MAX_LINE_BYTES == 65536 and "65536 bytes" in FORMAT
    assert MAX_RECORD_BYTES == 1 << 20 and "1 MiB (1,048,576 bytes)" in FORMAT
