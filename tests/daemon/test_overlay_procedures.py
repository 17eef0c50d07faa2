"""Host overlays that carry procedures (issue 18): run only where the channel's signed policy
says `overlay_procedures = true`; refused, with nothing applied, where it does not.

End to end: the overlay is set with the real `regen host set --procedures FILE`, the channel
published with a policy, and the client is a real `regend run --once`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regen.store import Policy, PolicyInvalid, Store
from tests.conftest import Mode, make_tree, run_cli

from .conftest import Client, publish

SERVICE = "#!/bin/sh\necho \"$1 $REGEN_PHASE paths=$(tr '\\n' ',' < \"$REGEN_CHANGED_PATHS_FILE\")\" >> {log}\n"


def channel_tree(log: Path) -> dict[str, Any]:
    return {"app/bin/service": Mode(SERVICE.format(log=log).encode(), 0o755), "app/etc/app.conf": "port = 1\n"}


def set_overlay(client: Client, store: Store, key_files: tuple[Path, Path], tmp_path: Path) -> None:
    """The host's overlay: its own etc/host.conf and a procedure that reloads on its change."""
    own = make_tree(tmp_path / "own", {"etc/host.conf": "mine\n"})
    procs = tmp_path / "host-procedures.toml"
    procs.write_text(f'[[procedure]]\nname = "host reload"\nwhen = ["etc/host.conf"]\n'
                     f'run = ["{client.root / "app/bin/service"}", "host-reload"]\n')
    run_cli("regen", "host", "set", client.host, str(own), "--procedures", str(procs), "--store", store.url,
            "--key", str(key_files[0]), "--plaintext", "-q")


def test_overlay_procedures_run_where_the_channel_policy_allows_them(
        client: Client, file_store: Store, signing_key: Any, key_files: tuple[Path, Path], tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    set_overlay(client, file_store, key_files, tmp_path)
    shown = run_cli("regen", "host", "show", client.host, "--store", file_store.url, "--trusted-key",
                    str(key_files[1])).stdout
    assert "procedure host reload" in shown
    publish(file_store, signing_key, channel_tree(log), number=1, policy=Policy(overlay_procedures=True))
    client.regend("run", "--once")
    assert (client.root / "etc/host.conf").read_text() == "mine\n"
    assert log.read_text().splitlines() == ["host-reload install paths=etc/host.conf,"]
    report = file_store.read_latest_report(client.host)
    assert report is not None
    assert [(r["name"], r["exit_status"]) for r in report.steps["procedures"]["ran"]] == [("host reload", 0)]
    client.regend("run", "--once")  # nothing changed: the installed overlay's procedures are kept, none fires
    (client.root / "etc/host.conf").write_text("drifted\n")
    client.regend("run", "--once")  # a repair of the overlay's file fires the overlay's procedure
    assert log.read_text().splitlines() == ["host-reload install paths=etc/host.conf,",
                                            "host-reload repair paths=etc/host.conf,"]


def test_overlay_procedures_are_refused_where_the_channel_policy_does_not_allow_them(
        client: Client, file_store: Store, signing_key: Any, key_files: tuple[Path, Path], tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    set_overlay(client, file_store, key_files, tmp_path)
    publish(file_store, signing_key, channel_tree(log), number=1, policy=Policy())
    res = client.regend("run", "--once", exit_code=None)
    assert res.returncode == 1 and "Traceback" not in res.stderr, (res.returncode, res.stderr)
    assert "carries procedures, but the channel's policy does not allow them" in res.stdout
    assert not log.exists() and not (client.root / "etc/host.conf").exists()
    report = file_store.read_latest_report(client.host)
    assert report is not None and report.outcome == "failing"
    assert any("does not allow them" in e for e in report.errors), report.errors


def test_overlay_procedures_switch_is_strict(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid, match="'overlay_procedures' must be true or false"):
        Policy.from_dict({"overlay_procedures": "yes"})
    assert Policy.from_dict({"overlay_procedures": True}).overlay_procedures
    assert "overlay_procedures" not in Policy().as_dict()  # records of older regens stay byte-identical
    bad = tmp_path / "p.toml"
    bad.write_text('preserve = ["x"]\n[[procedure]]\nname = "n"\nwhen = ["a"]\nrun = ["/bin/true"]\n')
    res = run_cli("regen", "host", "set", "h", str(tmp_path), "--procedures", str(bad), "--store",
                  (tmp_path / "nostore").as_uri(), exit_code=2)
    assert "may only hold [[procedure]] tables" in res.stderr + res.stdout
