"""regend.toml: every mistake is one line naming the file, the key and what is expected (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regen.daemon.config import load_config
from regen.daemon.errors import ConfigInvalid
from tests.conftest import run_cli

from .conftest import Client

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, pub: Path, body: str, **over: str) -> Path:
    base = {"store": '"file:///srv/regen"', "channel": '"stable"', "root": f'"{tmp_path / "root"}"',
            "state_dir": f'"{tmp_path / "state"}"', "trusted_keys": f'["{pub}"]'}
    base.update(over)
    lines = [f"{k} = {v}" for k, v in base.items() if v is not None]
    p = tmp_path / "regend.toml"
    p.write_text("\n".join(lines) + "\n" + body)
    return p


def test_minimal_config_defaults(tmp_path: Path, key_files) -> None:
    cfg = load_config(str(write(tmp_path, key_files[1], "")), {})
    assert cfg.channel == "stable" and cfg.host  # host defaults to the hostname
    assert cfg.junk is None and cfg.preserve == ()
    assert cfg.quarantine.max_bytes == 1 << 30 and cfg.failures.max_consecutive == 3
    assert cfg.schedule.interval == 3600 and cfg.hardware.disk_usage_fail == 98.0
    assert list(cfg.trusted) == [cfg.trusted_keys[0].keyid]


def test_the_contrib_example_is_valid(tmp_path: Path, key_files) -> None:
    text = (ROOT / "contrib/regend.toml").read_text()
    text = text.replace("/etc/regen/admin.key.pub", str(key_files[1]))
    p = tmp_path / "regend.toml"
    p.write_text(text)
    cfg = load_config(str(p), {"REGEN_S3_KEY": "k", "REGEN_S3_SECRET": "s"})
    assert cfg.root == "/" and cfg.state_dir == "/var/lib/regen"
    assert cfg.hooks.start_check and cfg.schedule.verify_every == 86400


@pytest.mark.parametrize("body, over, message", [
    ("", {"store": None}, "required key 'store' is missing"),
    ("", {"channel": '"bad/channel"'}, "channel must be 1-64 letters"),
    ("", {"root": '"relative/path"'}, "root must be an absolute path"),
    ("", {"trusted_keys": "[]"}, "trusted_keys must be a non-empty list of public key files"),
    ("", {"trusted_keys": '["/nonexistent.pub"]'}, "trusted_keys: key file /nonexistent.pub does not exist"),
    ("", {"junk": '"delete"'}, "junk must be 'quarantine' or 'keep', not 'delete'"),
    ("", {"preserve": '["../etc"]'}, "preserve must be a list of path globs"),
    ("", {"colour": '"blue"'}, "colour is not a known key"),
    ("[limits]\nmax_manifest_bytes = \"lots\"\n", {}, "limits.max_manifest_bytes must be a byte count"),
    ("[quarantine]\nmax_age_days = -1\n", {}, "quarantine.max_age_days must be a number of at least 0"),
    ("[hooks]\nstart_check = \"true\"\n", {}, "hooks.start_check must be a list of strings"),
    ("[failures]\naction = \"reboot\"\n", {}, "failures.action must be 'report' or 'quarantine'"),
    ("[hardware]\ndisk_usage_fail = 150\n", {}, "[hardware]: disk_usage_fail must be a number from 0 to 100"),
    ("[schedule]\ninterval = \"soon\"\n", {}, "[schedule]: interval must be a duration"),
    ("[storage_options]\nkey = \"${NOT_SET}\"\n", {}, "storage_options.key refers to ${NOT_SET}"),
    ("store = [", {}, "is not valid TOML"),
])
def test_bad_config_names_file_key_and_expectation(tmp_path: Path, key_files, body: str, over: dict,
                                                   message: str) -> None:
    p = write(tmp_path, key_files[1], body, **over)
    with pytest.raises(ConfigInvalid) as err:
        load_config(str(p), {})
    assert message in err.value.one_line()
    assert str(p) in err.value.one_line() or "does not exist" in message
    assert err.value.exit_code == 2 and "\n" not in err.value.one_line()


def test_state_dir_inside_root(tmp_path: Path, key_files) -> None:
    inside = f'"{tmp_path / "root" / "var/lib/regen"}"'
    # allowed, and implicitly preserved (root = "/" deployments; issue 13)
    cfg = load_config(str(write(tmp_path, key_files[1], "", state_dir=inside)), {})
    assert cfg.state_dir.endswith("var/lib/regen") and "var/lib/regen" in cfg.preserve
    with pytest.raises(ConfigInvalid, match="state_dir must be a directory other than root"):
        load_config(str(write(tmp_path, key_files[1], "", state_dir=f'"{tmp_path / "root"}"')), {})
    with pytest.raises(ConfigInvalid, match="root must be outside state_dir"):
        load_config(str(write(tmp_path, key_files[1], "", root=f'"{tmp_path / "state" / "r"}"')), {})


def test_storage_options_from_the_environment(tmp_path: Path, key_files) -> None:
    p = write(tmp_path, key_files[1], '[storage_options]\nsecret = "${REGEN_SECRET}"\nport = 445\n')
    cfg = load_config(str(p), {"REGEN_SECRET": "s3cr3t"})
    assert cfg.storage_options == {"secret": "s3cr3t", "port": 445}


def test_cli_bad_config_is_one_line_exit_2(client: Client, tmp_path: Path) -> None:
    client.config_path.write_text(client.config_path.read_text() + 'junk = "maybe"\n')
    for cmd in (["run", "--once"], ["check"], ["status"], ["recover", "--list"]):
        out = client.regend(*cmd, exit_code=2)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"regend: error: {client.config_path}: junk must be")
    missing = run_cli("regend", "run", "--once", "--config", str(tmp_path / "nope.toml"), exit_code=2)
    assert "does not exist" in missing.stderr and "regend example-config" in missing.stderr
    env = run_cli("regend", "status", exit_code=2, env={"REGEND_CONFIG": str(tmp_path / "env.toml")})
    assert f"configuration file {tmp_path / 'env.toml'} does not exist" in env.stderr
