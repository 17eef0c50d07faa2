"""Issue 13, hostile text: a file name, a manifest or a report string cannot drive the admin's
terminal (escaped as `ls -b` does, compared byte for byte), --json is strict JSON, store URL
credentials never reach output, errors or reports, and ${NAME} expands in nested tables."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from regen.daemon.config import load_config
from regen.store import Report, SecretKey, Store, json_safe, printable, redact

from .conftest import Client, publish

EVIL = "evil\x1b]0;owned\x07\x1b[2J\x1b]52;c;cm0gLXJmIC8=\x07\r\n.txt"
EVIL_SHOWN = "evil\\033]0;owned\\a\\033[2J\\033]52;c;cm0gLXJmIC8=\\a\\r\\n.txt"


def test_printable_escapes_like_ls_b() -> None:
    assert printable(EVIL) == EVIL_SHOWN
    assert printable("caf\u00e9 \u65e5\u672c") == "caf\u00e9 \u65e5\u672c"  # printable text unchanged
    assert printable("\x9b31m") == "\\302\\23331m"  # a C1 CSI
    assert printable("bad\udcffname") == "bad\\xffname"


@given(hs.text())
def test_printable_output_has_no_control_character_and_is_idempotent(text: str) -> None:
    out = printable(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in out)
    assert printable(out) == out


def test_file_names_reach_the_terminal_escaped(file_store: Store, signing_key: SecretKey,
                                               make_client: Callable[..., Client]) -> None:
    """`regend check` and `regend recover --list` print a planted name byte for byte escaped."""
    publish(file_store, signing_key, {"etc/a.conf": b"a\n"}, number=1)
    c: Client = make_client(file_store.url)
    c.regend("run", "--once")
    (c.root / "etc" / EVIL).write_bytes(b"x")
    res = c.regend("check")
    assert "\x1b" not in res.stdout + res.stderr and f"etc/{EVIL_SHOWN}" in res.stdout, res.stdout
    c.regend("run", "--once")
    listing = c.regend("recover", "--list")
    run_id = listing.stdout.split()[0]
    res = c.regend("recover", run_id, "--list")
    assert f"  etc/{EVIL_SHOWN}  (file, 1 bytes, removed by regend)\n" in res.stdout
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout


def test_json_is_strict_no_nan() -> None:
    data = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": {"d": math.nan}}
    assert json_safe(data) == {"a": None, "b": [None, None, 1.5], "c": {"d": None}}
    raw = (b'{"type": "regen-report", "format": 1, "features": [], "host": "h", "run_id": "r", "started": "s", '
           b'"finished": "f", "outcome": "ok", "exit_code": 0, "hardware": {"temp": NaN}}')
    try:
        report = Report.from_json(raw)
    except Exception:  # noqa: BLE001 - refused is fine too: it is never passed on with NaN
        return
    json.loads(report.to_json(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))


def test_credentials_in_urls_are_redacted() -> None:
    assert redact("cannot reach sftp://regen:s3cr3t@store.example/srv/regen: timed out") == \
        "cannot reach sftp://regen:***@store.example/srv/regen: timed out"
    assert redact("https://h/x?X-Amz-Signature=abc&y=1") == "https://h/x?X-Amz-Signature=***&y=1"
    assert redact("smb://user@server/share") == "smb://user@server/share"


def test_a_store_password_never_reaches_output_or_report(make_client: Callable[..., Client]) -> None:
    c: Client = make_client("sftp://regen:s3cr3t@127.0.0.1:1/srv/regen", storage_options={"timeout": 1})
    res = c.regend("run", "--once", exit_code=None)
    assert res.returncode == 1, res  # (never installed, the store unreachable: the run failed)
    saved = "".join(p.read_text() for p in (c.state / "reports").glob("*.json")) if (c.state / "reports").exists() \
        else ""
    assert "s3cr3t" not in res.stdout + res.stderr + saved, res.stdout + res.stderr
    for f in c.state.rglob("*"):  # the index, its journal, the outbox
        if f.is_file():
            assert b"s3cr3t" not in f.read_bytes(), f


def test_name_expands_in_nested_storage_option_tables(tmp_path: Path, key_files) -> None:
    p = tmp_path / "regend.toml"
    p.write_text(f'store = "https://mirror.example/regen"\nchannel = "stable"\nroot = "{tmp_path / "root"}"\n'
                 f'state_dir = "{tmp_path / "state"}"\ntrusted_keys = ["{key_files[1]}"]\n'
                 '[storage_options.headers]\nAuthorization = "${REGEN_TOKEN}"\n'
                 '[storage_options.client_kwargs]\nlist = ["${REGEN_TOKEN}", "plain"]\n')
    cfg = load_config(str(p), {"REGEN_TOKEN": "Bearer t0k"})
    assert cfg.storage_options["headers"] == {"Authorization": "Bearer t0k"}
    assert cfg.storage_options["client_kwargs"] == {"list": ["Bearer t0k", "plain"]}


@pytest.mark.slow  # four regen processes
def test_a_stray_generation_file_is_skipped_with_a_warning(tmp_path: Path, key_files) -> None:
    """generations/stable/².json ("²".isdigit() is True, int("²") raises) crashed log/gc/fsck/snapshot."""
    from ..conftest import make_tree, run_cli

    url = f"file://{tmp_path / 'store'}"
    env = {"REGEN_STORE": url, "REGEN_KEY": str(key_files[0])}
    run_cli("regen", "init", url, env=env)
    ref = make_tree(tmp_path / "ref", {"a": b"a\n"})
    run_cli("regen", "snapshot", str(ref), "-c", "stable", "-m", "one", "--publish", "-q", env=env)
    (tmp_path / "store" / "generations" / "stable" / "\u00b2.json").write_text("{}")
    for args in (["log"], ["gc", "--dry-run"], ["fsck"], ["snapshot", str(ref), "-c", "stable", "-m", "two",
                                                          "--publish", "-q"]):
        res = run_cli("regen", *args, env=env)
        assert "regen: skipping generations/stable/\u00b2.json" in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr
    assert "2" in run_cli("regen", "log", "--json", env=env).stdout


def test_status_survives_a_fifo_nan_and_escape_sequences_in_reports(tmp_path: Path) -> None:
    """reports/<host>/latest.json: a symlink to a FIFO (hung `regen status`), a report holding NaN
    (`--json` emitted NaN) and a report whose error holds terminal escape sequences (written raw)."""
    from regen.store import format_time, utcnow

    from ..conftest import run_cli

    url = f"file://{tmp_path / 'store'}"
    run_cli("regen", "init", url)
    reports = tmp_path / "store" / "reports"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (reports / "h1").mkdir(parents=True)
    (reports / "h1" / "latest.json").symlink_to(fifo)
    now = format_time(utcnow())
    evil = Report(host="h2", run_id="r", started=now, finished=now, outcome="failing", exit_code=1,
                  channel="stable", errors=(EVIL,), actions={"ratio": 1.5})
    (reports / "h2").mkdir()
    (reports / "h2" / "latest.json").write_bytes(evil.to_json().replace(b"1.5", b"NaN"))
    res = run_cli("regen", "status", "--store", url, exit_code=None, timeout=60, env={"COLUMNS": "400"})
    assert res.returncode == 0, res  # (status lists failing hosts; only --check exits 1 for them)
    assert "\x1b" not in res.stdout + res.stderr and "\x07" not in res.stdout + res.stderr
    assert f"h2: {EVIL_SHOWN}" in res.stdout, res.stdout
    assert "h1" in res.stdout and "Too many levels of symbolic links" in res.stdout, res.stdout
    res = run_cli("regen", "status", "--store", url, "--json", exit_code=None, timeout=60)
    data = json.loads(res.stdout, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert {h["host"] for h in data["hosts"]} == {"h1", "h2"}
