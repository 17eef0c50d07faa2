"""Signed envelopes and key files: each way a record or a key can be wrong has its own error."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import blake3
import pytest

from regen.store import (
    BadSignature,
    KeyInvalid,
    RecordInvalid,
    RecordTooLarge,
    SecretKey,
    UnknownKey,
    generate,
    key_id,
    load_public_key,
    load_secret_key,
    open_envelope,
    peek_envelope,
    sign_envelope,
    trust_map,
    write_keypair,
)

RECORD = {"type": "test", "number": 7, "message": "ünïcødé and \"quotes\"", "list": [1, 2], "none": None}


def test_envelope_round_trip(signing_key: SecretKey) -> None:
    env = sign_envelope(RECORD, [signing_key])
    assert open_envelope(env, trust_map([signing_key.public])) == RECORD
    assert peek_envelope(env) == RECORD
    parsed = json.loads(env)
    assert parsed["signatures"][0]["keyid"] == signing_key.public.keyid


def test_signature_covers_the_canonical_record_not_the_envelope_bytes(signing_key: SecretKey) -> None:
    env = json.loads(sign_envelope(RECORD, [signing_key]))
    reformatted = json.dumps(env, indent=4, ensure_ascii=True).encode()  # same content, other bytes
    assert open_envelope(reformatted, trust_map([signing_key.public])) == RECORD


def test_one_trusted_signature_among_several_is_enough(signing_key: SecretKey, other_key: SecretKey) -> None:
    env = sign_envelope(RECORD, [other_key, signing_key])
    assert open_envelope(env, trust_map([signing_key.public])) == RECORD
    assert open_envelope(env, trust_map([other_key.public])) == RECORD


def test_tampered_record_is_a_bad_signature(signing_key: SecretKey) -> None:
    env = json.loads(sign_envelope(RECORD, [signing_key]))
    env["signed"]["number"] = 8
    with pytest.raises(BadSignature) as err:
        open_envelope(json.dumps(env).encode(), trust_map([signing_key.public]), where="refs/stable")
    assert "refs/stable" in str(err.value) and err.value.exit_code == 1


def test_tampered_signature_is_a_bad_signature(signing_key: SecretKey) -> None:
    env = json.loads(sign_envelope(RECORD, [signing_key]))
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[0] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(BadSignature):
        open_envelope(json.dumps(env).encode(), trust_map([signing_key.public]))
    env["signatures"][0]["sig"] = "not base64!"
    with pytest.raises(BadSignature):
        open_envelope(json.dumps(env).encode(), trust_map([signing_key.public]))


def test_signature_of_a_trusted_key_id_by_another_key_is_bad(signing_key: SecretKey, other_key: SecretKey) -> None:
    """A forger who copies the trusted key id gains nothing."""
    env = json.loads(sign_envelope(RECORD, [other_key]))
    env["signatures"][0]["keyid"] = signing_key.public.keyid
    with pytest.raises(BadSignature):
        open_envelope(json.dumps(env).encode(), trust_map([signing_key.public]))


def test_unsigned_record_is_refused(signing_key: SecretKey) -> None:
    with pytest.raises(BadSignature, match="not signed"):
        open_envelope(sign_envelope(RECORD, []), trust_map([signing_key.public]))


def test_unknown_key_names_the_key(signing_key: SecretKey, other_key: SecretKey) -> None:
    env = sign_envelope(RECORD, [other_key])
    with pytest.raises(UnknownKey) as err:
        open_envelope(env, trust_map([signing_key.public]))
    assert other_key.public.keyid in str(err.value)
    assert "trusted keys" in err.value.hint


@pytest.mark.parametrize("data", [
    b"not json",
    b"[1, 2]",
    b'{"signed": {}}',
    b'{"signed": {}, "signatures": [], "extra": 1}',
    b'{"signed": [], "signatures": []}',
    b'{"signed": {}, "signatures": {}}',
    b'{"signed": {}, "signatures": ["abc"]}',
    b'{"signed": {}, "signatures": [{"keyid": 1, "sig": "x"}]}',
    b"[" * 50_000,
])
def test_malformed_envelopes_are_record_invalid(data: bytes, signing_key: SecretKey) -> None:
    with pytest.raises(RecordInvalid):
        open_envelope(data, trust_map([signing_key.public]))


@pytest.mark.parametrize("value", [b"NaN", b"1e999", b'"\\ud800"'])
def test_values_without_canonical_form_are_record_invalid(value: bytes, signing_key: SecretKey) -> None:
    data = (b'{"signatures":[{"keyid":"%s","sig":"AAAA"}],"signed":{"v":%s}}'
            % (signing_key.public.keyid.encode(), value))
    with pytest.raises(RecordInvalid):
        open_envelope(data, trust_map([signing_key.public]))


def test_oversized_envelope_is_refused_before_parsing(signing_key: SecretKey) -> None:
    with pytest.raises(RecordTooLarge):
        open_envelope(b" " * (1 << 20) + b"{}", trust_map([signing_key.public]))
    with pytest.raises(RecordTooLarge):
        peek_envelope(b" " * (1 << 20) + b"{}")


def test_peek_refuses_what_is_not_an_envelope() -> None:
    for data in (b"nope", b"[]", b'{"signed": 3}'):
        with pytest.raises(RecordInvalid):
            peek_envelope(data)


def test_key_id_is_blake3_prefix_of_the_raw_public_key(signing_key: SecretKey) -> None:
    raw = signing_key.public.raw
    assert len(raw) == 32
    assert signing_key.public.keyid == key_id(raw) == blake3.blake3(raw).hexdigest()[:16]


def test_secret_key_never_shows_its_seed(signing_key: SecretKey) -> None:
    assert base64.b64encode(signing_key.seed).decode() not in repr(signing_key)
    assert signing_key.seed.hex() not in repr(signing_key)


# -- key files ----------------------------------------------------------------------------------------

def test_write_keypair_creates_secret_0600_and_public(tmp_path: Path) -> None:
    key = generate()
    path = tmp_path / "admin.key"
    write_keypair(str(path), key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret_key(path).seed == key.seed
    assert load_public_key(Path(f"{path}.pub")) == key.public
    assert load_public_key(path) == key.public  # a secret key file also gives its public key
    assert Path(f"{path}.pub").read_text().startswith("regen-ed25519-public:")


def test_write_keypair_never_overwrites(tmp_path: Path, signing_key: SecretKey) -> None:
    path = tmp_path / "admin.key"
    write_keypair(path, signing_key)  # type: ignore[arg-type]
    before = path.read_bytes(), Path(f"{path}.pub").read_bytes()
    with pytest.raises(KeyInvalid, match="already exists") as err:
        write_keypair(str(path), generate())
    assert "never overwrites" in err.value.hint
    assert (path.read_bytes(), Path(f"{path}.pub").read_bytes()) == before


def test_write_keypair_refuses_when_only_the_public_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    Path(f"{path}.pub").write_text("someone else's public key\n")
    with pytest.raises(KeyInvalid, match="already exists"):
        write_keypair(str(path), generate())
    assert not path.exists()
    assert Path(f"{path}.pub").read_text() == "someone else's public key\n"


def test_write_keypair_in_missing_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyInvalid, match="cannot be created"):
        write_keypair(str(tmp_path / "nope" / "admin.key"), generate())


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyInvalid, match="does not exist") as err:
        load_secret_key(tmp_path / "missing.key")
    assert err.value.exit_code == 2 and "regen keygen" in err.value.hint


def test_public_key_given_as_secret_key_names_the_expected_prefix(key_files: tuple[Path, Path]) -> None:
    _secret, public = key_files
    with pytest.raises(KeyInvalid, match="regen-ed25519-secret:") as err:
        load_secret_key(public)
    assert str(public) in str(err.value)


@pytest.mark.parametrize("text, message", [
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\n", "not a regen public key"),
    ("regen-ed25519-public:not*base64\n", "bad base64"),
    ("regen-ed25519-public:" + base64.b64encode(b"short").decode() + "\n", "5 bytes, expected 32"),
    ("", "not a regen public key"),
])
def test_malformed_public_key_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "k.pub"
    path.write_text(text)
    with pytest.raises(KeyInvalid, match=message) as err:
        load_public_key(path)
    assert "\n" not in err.value.one_line()


def test_unreadable_key_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.key"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(KeyInvalid, match="cannot be read"):
        load_secret_key(path)
    with pytest.raises(KeyInvalid, match="cannot be read"):
        load_secret_key(tmp_path)  # a folder


def test_key_text_survives_surrounding_whitespace(tmp_path: Path, signing_key: SecretKey) -> None:
    path = tmp_path / "k.pub"
    path.write_text("\n  " + signing_key.public.text() + "  \n\n")
    assert load_public_key(path) == signing_key.public
    assert load_public_key(str(path)) == signing_key.public
