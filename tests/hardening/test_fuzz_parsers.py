"""Every parser of untrusted input, fuzzed: it accepts or raises one of regen's own errors, nothing else.

A parser that lets a KeyError, TypeError, OverflowError or RecursionError escape would turn
hostile store data or a typo in a config into a traceback (or a crashed boot run) instead
of one clear line. Inputs: arbitrary bytes, arbitrary JSON, and mutations of valid data
(the mutations reach far deeper than random bytes, past the JSON and signature checks:
records are re-signed with the trusted key so the record validator itself is exercised).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regen.store import (
    Entry,
    Generation,
    Overlay,
    Policy,
    RegenError,
    Report,
    SecretKey,
    build_manifest,
    open_envelope,
    parse_manifest,
    sign_envelope,
    trust_map,
    verify_generation,
    verify_overlay,
)
from regen.store.report import Finding as HardwareFinding

FUZZ = settings(max_examples=3000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
STORE_ID = "0123456789abcdef0123456789abcdef"
OID = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
XXH = "06b05ab6733a618578af5f94892f3950"
KEY = SecretKey(bytes(range(32)))
TRUSTED = trust_map([KEY.public])

# -- strategies -------------------------------------------------------------------------------------
scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats() | st.text(max_size=20)
           | st.sampled_from(["", "/", "..", "a/../b", "/etc/passwd", "a\x00b", "\udcff", "f", "d", "l",
                              "2025-01-02T03:04:05Z", "9999-12-31T23:59:59Z", OID, XXH, "x" * 300,
                              "regen-generation", "regen-overlay", "regen-report", "regen-manifest"]))
json_values = scalars | st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.text(max_size=6), c, max_size=3), max_leaves=6)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few byte-level edits: flips, inserts, deletions, duplicated or swapped lines."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "dupline", "swapline", "truncate"]))
        n = len(out)
        if op == "flip" and n:
            i = draw(st.integers(0, n - 1))
            out[i] = draw(st.sampled_from([0, 0x0A, 0x22, 0x2F, 0x2E, 0x5C, 0x7B, 0x7D, 0xFF, 0x80,
                                           out[i] ^ (1 << draw(st.integers(0, 7)))]))
        elif op == "insert":
            i = draw(st.integers(0, n))
            out[i:i] = draw(st.sampled_from([b"\n", b'"', b"..", b"/", b"\x00", b"\\u0000", b"9" * 40, b"[" * 50,
                                             b",\"p\":\"a\"", b"\\ud800", b"{}", b"null", b"-1", b"1e999"])
                            | st.binary(max_size=8))
        elif op == "delete" and n:
            i = draw(st.integers(0, n - 1))
            del out[i:i + draw(st.integers(1, 16))]
        elif op in ("dupline", "swapline"):
            lines = bytes(out).split(b"\n")
            if len(lines) > 1:
                i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
                if op == "dupline":
                    lines.insert(j, lines[i])
                else:
                    lines[i], lines[j] = lines[j], lines[i]
                out = bytearray(b"\n".join(lines))
        elif op == "truncate" and n:
            del out[draw(st.integers(0, n - 1)):]
    return bytes(out)


def accepts_or_regen_error(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except RegenError as exc:
        assert exc.one_line() and "\n" not in exc.one_line()
        return exc


# -- manifests --------------------------------------------------------------------------------------
def _valid_manifest() -> bytes:
    entries = [Entry("etc", "dir", 0o755), Entry("etc/hosts", "file", 0o644, 3, OID, XXH),
               Entry("etc/l", "symlink", 0o777, target="hosts"), Entry("etc-x", "dir", 0o700),
               Entry("etc-x/a b\nc", "file", 0o600, 0, OID, XXH), Entry("é", "symlink", 0o777, target="/abs/../x")]
    return build_manifest(entries)[0]


VALID_MANIFEST = _valid_manifest()
_FIELD = {"k": st.sampled_from(["f", "d", "l", "x", ""]), "m": st.sampled_from([0, 420, 493, 4095, 4096, -1, True, 1.0]),
          "o": st.sampled_from([OID, OID.upper(), OID[:-1], ""]), "p": st.sampled_from(
              ["a", "a/b", "b", "a/b/c", "../x", "/abs", "a//b", "a/./b", "a\x00", "x" * 256, "\udcff", "a/"]),
          "s": st.sampled_from([0, 3, -1, 2**70, "3"]), "t": st.sampled_from(["a", "", "/etc", "x\x00", "y" * 4097]),
          "x": st.sampled_from([XXH, XXH[:-1], XXH.upper()])}
ENTRY_LINE = st.fixed_dictionaries({}, optional={k: v | scalars for k, v in _FIELD.items()}).map(
    lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def test_manifest_fuzz_arbitrary_bytes() -> None:
    """Scenario: manifest parser on arbitrary bytes and arbitrary JSON lines after a valid header."""
    header = VALID_MANIFEST.split(b"\n", 1)[0] + b"\n"

    @FUZZ
    @given(st.one_of(st.binary(max_size=300), st.lists(ENTRY_LINE, max_size=4).map(
        lambda lines: header + b"".join(line + b"\n" for line in lines))))
    def check(data: bytes) -> None:
        accepts_or_regen_error(parse_manifest, data)

    check()


def test_manifest_fuzz_mutated_valid() -> None:
    """Scenario: manifest parser on mutations of a valid manifest; what it accepts is still safe."""

    @FUZZ
    @given(mutated(VALID_MANIFEST))
    def check(data: bytes) -> None:
        result = accepts_or_regen_error(parse_manifest, data)
        if isinstance(result, list):  # whatever is accepted obeys the rules a client relies on
            seen: set[str] = set()
            kinds = {}
            for e in result:
                parts = e.path.split("/")
                assert e.path and not e.path.startswith("/") and "\x00" not in e.path
                assert ".." not in parts and "." not in parts and "" not in parts
                assert e.path not in seen
                parent = e.path.rpartition("/")[0]
                assert not parent or kinds.get(parent) == "dir"
                seen.add(e.path)
                kinds[e.path] = e.kind

    check()


# -- generation and overlay records ------------------------------------------------------------------
def _gen_record() -> dict[str, Any]:
    return Generation(STORE_ID, "stable", 5, OID, "2025-01-02T03:04:05Z", 4, "msg",
                      Policy(preserve=("home",), base=("usr/**",)), {"files": 1}, "2031-01-01T00:00:00Z").to_record()


def _ov_record() -> dict[str, Any]:
    return Overlay(STORE_ID, "kiosk-01", 3, OID, "2025-01-02T03:04:05Z", "m", None).to_record()


@st.composite
def edited_record(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid record with some fields replaced by arbitrary JSON, removed, or added."""
    rec = dict(base)
    for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=4, unique=True)):
        if draw(st.booleans()):
            rec[key] = draw(json_values)
        else:
            del rec[key]
    if draw(st.booleans()):
        policy = dict(base.get("policy") or {})
        policy[draw(st.sampled_from(["preserve", "base", "exclude", "junk", "other"]))] = draw(json_values)
        rec["policy"] = policy
    rec.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
    return rec


def _verify_gen(data: bytes, min_number: int | None) -> Any:
    return accepts_or_regen_error(verify_generation, data, TRUSTED, store_id=STORE_ID, channel="stable",
                                  min_number=min_number, now=NOW)


def _sign(rec: dict[str, Any]) -> bytes:
    try:
        return sign_envelope(rec, [KEY])
    except (ValueError, UnicodeEncodeError):  # NaN or a lone surrogate: no canonical form, cannot be signed
        return json.dumps({"signatures": [{"keyid": KEY.public.keyid, "sig": "AAAA"}], "signed": rec},
                          ensure_ascii=False).encode("utf-8", "surrogatepass")


def test_record_fuzz_signed_garbage_fields() -> None:
    """Scenario: records with arbitrary field values, correctly signed by the trusted key."""

    @FUZZ
    @given(st.one_of(edited_record(_gen_record()), edited_record(_ov_record())), st.none() | st.integers(0, 10))
    def check(rec: dict[str, Any], min_number: int | None) -> None:
        data = _sign(rec)
        gen = _verify_gen(data, min_number)
        if isinstance(gen, Generation):
            assert gen.channel == "stable" and gen.store_id == STORE_ID and isinstance(gen.manifest, str)
        accepts_or_regen_error(verify_overlay, data, TRUSTED, store_id=STORE_ID, host="kiosk-01",
                               min_number=min_number, now=NOW)

    check()


def test_record_fuzz_envelopes() -> None:
    """Scenario: arbitrary JSON, arbitrary bytes and mutated valid envelopes: nothing unsigned gets in."""
    valid = sign_envelope(_gen_record(), [KEY])

    @FUZZ
    @given(st.one_of(mutated(valid), st.binary(max_size=200),
                     json_values.map(lambda v: json.dumps(v).encode()),
                     st.fixed_dictionaries({"signatures": json_values, "signed": json_values}).map(
                         lambda v: json.dumps(v).encode())))
    def check(data: bytes) -> None:
        gen = _verify_gen(data, None)
        if isinstance(gen, Generation):  # accepted: only if it is, field for field, what was signed
            assert gen.to_record() == _gen_record()
        accepts_or_regen_error(open_envelope, data, TRUSTED)

    check()


# -- reports ---------------------------------------------------------------------------------------
def _report() -> bytes:
    return Report("kiosk-01", "r1", "2025-01-02T03:04:05Z", "2025-01-02T03:04:06Z", "repaired", 0, "stable", 1, 2,
                  {"scan": "ok"}, (HardwareFinding("disk /", "warn", "92% full", {"used": 92}, True),),
                  {"modified": 1}, {"written": 1}, 10, ("e",), ("w",), "0.1.0").to_json()


def test_report_fuzz() -> None:
    """Scenario: Report.from_json on arbitrary, structurally edited and byte-mutated reports."""
    base = json.loads(_report())

    @st.composite
    def edited(draw: st.DrawFn) -> bytes:
        d = dict(base)
        for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=4, unique=True)):
            if draw(st.booleans()):
                d[key] = draw(json_values)
            else:
                del d[key]
        if draw(st.booleans()):
            d["findings"] = [draw(st.dictionaries(st.sampled_from(["component", "severity", "message", "evidence",
                                                                   "usable"]), json_values))]
        return json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")

    @FUZZ
    @given(st.one_of(edited(), mutated(_report()), st.binary(max_size=200),
                     json_values.map(lambda v: json.dumps(v).encode())))
    def check(data: bytes) -> None:
        rep = accepts_or_regen_error(Report.from_json, data)
        if isinstance(rep, Report):
            assert rep.outcome in ("ok", "repaired", "updated", "quarantined", "failing")
            Report.from_json(rep.to_json())  # what was accepted can be written and read back

    check()


def test_report_deeply_nested() -> None:
    """Scenario: a report nested thousands deep (JSON bombs) is refused, not a RecursionError."""
    for depth in (900, 5000, 100000):
        accepts_or_regen_error(Report.from_json, b'{"type":"regen-report","format":1,"errors":' + b"[" * depth
                               + b"]" * depth + b"}")
        accepts_or_regen_error(parse_manifest, b'{"features":[],"format":1,"type":"regen-manifest"}\n'
                               + b"[" * depth + b"]" * depth + b"\n")
        _verify_gen(b'{"signatures":[],"signed":' + b"[" * depth + b"]" * depth + b"}", None)


# -- daemon configuration ----------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        text = repr(v)
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(text, text)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is close enough to a JSON string (escapes \\uXXXX)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None) + "}"
    return '""'


CONFIG_KEYS = {
    "": ["store", "storage_options", "channel", "host", "root", "state_dir", "trusted_keys", "preserve", "junk"],
    "limits": ["max_record_bytes", "max_manifest_bytes", "min_free_bytes"],
    "quarantine": ["max_age_days", "max_bytes"],
    "hooks": ["start_check", "quarantine", "timeout"],
    "failures": ["max_consecutive", "action"],
    "reports": ["keep"],
    "schedule": ["interval", "jitter", "verify_every"],
    "hardware": ["min_memory", "disk_usage_warn", "disk_usage_fail", "probe_timeout", "network_fs", "skip"],
}
CONFIG_VALUES = json_values | st.sampled_from(
    ["512M", "4G", "9" * 400, "1e999", "0", "-1", "1.5k", "/", "/nonexistent", "${NOPE}", "${HOME}", "quarantine",
     "keep", "report", "10m", "1d", "P1D", 10**400, -(10**400), 2**63, float("inf"), "a\x00b", "\ud800"])


def test_config_fuzz(tmp_path: Path) -> None:
    """Scenario: daemon.config.load_config on valid-looking, edited and garbage TOML files."""
    from regen.daemon.config import load_config

    pub = tmp_path / "admin.pub"
    pub.write_text(KEY.public.text())
    root, state = tmp_path / "root", tmp_path / "state"
    root.mkdir()
    base: dict[str, dict[str, Any]] = {"": {"store": f"file://{tmp_path}/store", "channel": "stable", "host": "kiosk-01",
                                            "root": str(root), "state_dir": str(state), "trusted_keys": [str(pub)],
                                            "preserve": ["home"], "junk": "quarantine"},
                                       "limits": {"max_record_bytes": "1M"}, "schedule": {"interval": "1h"}}
    path = tmp_path / "regend.toml"

    def render(tables: dict[str, dict[str, Any]]) -> str:
        lines = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in tables.get("", {}).items() if v is not None]
        for name, table in tables.items():
            if name:
                lines.append(f"[{name}]")
                lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items() if v is not None]
        return "\n".join(lines) + "\n"

    @st.composite
    def configs(draw: st.DrawFn) -> bytes:
        tables = {k: dict(v) for k, v in base.items()}
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 4]))):
            table = draw(st.sampled_from(sorted(CONFIG_KEYS)))
            key = draw(st.sampled_from(CONFIG_KEYS[table] + ["unknown"]))
            tables.setdefault(table, {})[key] = draw(CONFIG_VALUES | st.none())
        text = render(tables).encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            text = draw(mutated(text))
        return text

    valid = render(base).encode()
    load_config(str(_write(path, valid)), {})  # the base is valid: edits are what gets refused

    @FUZZ
    @given(st.one_of(configs(), st.binary(max_size=200), st.text(max_size=200).map(
        lambda t: t.encode("utf-8", "surrogatepass"))))
    def check(data: bytes) -> None:
        accepts_or_regen_error(load_config, str(_write(path, data)), {"HOME": "/root"})

    check()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("text", [
    "a = " + "[" * 5000 + "]" * 5000,
    "a = " + "{b = " * 3000 + "1" + "}" * 3000,
    "[limits]\nmax_record_bytes = \"" + "9" * 400 + "\"",
    "[quarantine]\nmax_age_days = " + "9" * 400,
    "trusted_keys = [\"a\\u0000b\"]",
    "root = \"/srv/a\\u0000b\"",
], ids=["nested-arrays", "nested-inline-tables", "size-overflow", "huge-integer", "nul-in-key-path", "nul-in-root"])
def test_config_hostile_values(tmp_path: Path, text: str) -> None:
    """Scenario: config values crafted to overflow or recurse are refused with one line (exit 2)."""
    from regen.daemon.config import load_config

    pub = tmp_path / "admin.pub"
    pub.write_text(KEY.public.text())
    head = f'store = "file://{tmp_path}/store"\nchannel = "stable"\nstate_dir = "{tmp_path}/state"\n'
    if "root" not in text:
        head += f'root = "{tmp_path}/root"\n'
    if "trusted_keys" not in text:
        head += f'trusted_keys = ["{pub}"]\n'
    path = _write(tmp_path / "regend.toml", (head + text + "\n").encode())
    with pytest.raises(RegenError) as info:
        load_config(str(path), {})
    assert info.value.exit_code == 2 and str(path) in info.value.one_line()
