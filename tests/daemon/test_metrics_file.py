"""regend's Prometheus textfile: written after each run when configured, parsed by prometheus_client."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from regen.daemon.gate.hardware import FakeProbe
from regen.store import HardwareFinding, MetricFamily, Store, metrics_exposition

from .conftest import Client, publish

GEN1 = {"etc/app.conf": "v1", "bin/tool": "tool"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_each_run_rewrites_the_metrics_file(client: Client, file_store: Store, signing_key) -> None:
    prom = client.base / "textfile" / "regen.prom"
    prom.parent.mkdir()
    client.write_config(reports={"metrics": str(prom)})
    publish(file_store, signing_key, GEN1, number=1)
    assert client.run().exit_code == 0
    first = samples(prom.read_text())
    assert first[("regen_state", (("state", "updated"),))] == 1
    assert first[("regen_generation", (("channel", "stable"),))] == 1
    assert first[("regen_last_run_success", ())] == 1 and first[("regen_last_run_exit_code", ())] == 0
    assert first[("regen_last_run_duration_seconds", ())] >= 0
    (client.root / "etc/app.conf").write_text("tampered")
    disk = HardwareFinding("disk /dev/sda", "warn", "reallocated sectors", {"count": 8})
    result = client.run(probe=FakeProbe({"cpu": {"count": 2}}, [disk]))
    assert result.report.outcome == "repaired"
    after = samples(prom.read_text())
    assert after[("regen_state", (("state", "repaired"),))] == 1 and after[("regen_state", (("state", "ok"),))] == 0
    assert after[("regen_drift_paths", (("kind", "modified"),))] == 1
    assert after[("regen_repaired_paths", ())] == 1
    assert after[("regen_hardware_findings", (("severity", "warn"),))] == 1
    assert ("regen_quarantined_bytes", ()) in after
    assert [p.name for p in prom.parent.iterdir()] == ["regen.prom"]  # no temporary file left behind


def test_no_metrics_file_unless_configured(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.write_config()
    assert client.run().exit_code == 0
    assert not list(client.base.rglob("*.prom"))


def test_label_values_cannot_forge_samples() -> None:
    hostile = 'x"} 1\nregen_fake{a="b'
    text = metrics_exposition([MetricFamily("regen_t", "help with \\ and\nnewline", samples=[({"host": hostile}, 2)])])
    fams = list(text_string_to_metric_families(text))
    assert [f.name for f in fams] == ["regen_t"]
    assert [(s.labels["host"], s.value) for s in fams[0].samples] == [(hostile, 2.0)]
