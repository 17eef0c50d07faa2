"""Every storage-option mistake is one line naming the option and the valid ones, exit 2, no
traceback (issue 17): real `regen` runs fed each known mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from regen.store.errors import EXIT_USAGE
from tests.conftest import run_cli

CASES = [
    ("typo'd option", ["--store", "s3://bucket/x", "-o", "endpont_url=http://127.0.0.1:9"],
     ["'endpont_url'", "did you mean endpoint_url?", "valid: ", "key, "]),
    ("wrong type", ["--store", "s3://bucket/x", "-o", "anon=maybe"], ["'anon'", "must be true or false"]),
    ("number expected", ["--store", "s3://bucket/x", "-o", "max_concurrency=lots"],
     ["'max_concurrency'", "must be a number"]),
    ("bad JSON", ["--store", "s3://bucket/x", "-o", "config_kwargs={retries: 1}"],
     ["'config_kwargs'", "is not valid JSON"]),
    ("unknown botocore setting", ["--store", "s3://bucket/x", "-o", 'config_kwargs={"retrys": 1}'],
     ["config_kwargs.retrys", "did you mean retries?"]),
    ("http option", ["--store", "http://127.0.0.1:9/x", "-o", "proxi=http://p"], ["'proxi'", "did you mean proxy?"]),
    ("bad URL", ["--store", "s3://"], ["lacks a host or bucket", "use file:///path"]),
    ("unknown scheme", ["--store", "ftp://host/x"], ["unsupported scheme 'ftp'"]),
    ("unreadable key", ["--store", "sftp://host/x", "-o", "key_filename=/nonexistent/id_ed25519"],
     ["'key_filename'", "cannot be read"]),
    ("own option", ["--store", "file:///srv/x", "-o", "timeout=soon"], ["timeout='soon'", "positive number"]),
]


@pytest.mark.parametrize("args, needles", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_storage_option_mistakes_are_one_line_and_exit_2(args: list[str], needles: list[str]) -> None:
    res = run_cli("regen", "log", *args, exit_code=EXIT_USAGE)
    assert res.stdout == "" and "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("regen: error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unreadable_signing_key_is_one_line(tmp_path: Path) -> None:
    key = tmp_path / "admin.key"
    key.write_text("regen-ed25519-secret:AAAA\n")
    key.chmod(0)
    store = tmp_path / "store"
    run_cli("regen", "init", f"file://{store}")
    res = run_cli("regen", "snapshot", str(tmp_path), "--store", f"file://{store}", "--channel", "stable", "-m", "x",
                  "--key", str(tmp_path / "missing.key"), exit_code=EXIT_USAGE)
    assert len(res.stderr.splitlines()) == 1 and "missing.key" in res.stderr
