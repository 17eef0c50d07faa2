"""Peak memory and time of building, storing, loading and diffing big manifests.

    .venv/bin/python tests/bench/manifest_scale.py --entries 1000000 [--work DIR] [--keep]

Each phase runs in a fresh Python process, so its peak RSS (getrusage ru_maxrss) is its
own and not the high-water mark of an earlier phase:

  baseline  import regen.store, nothing else (what every phase pays anyway)
  build     ManifestWriter -> local file, entries generated in tree order on the fly
  store     Store.put_file of that file into a file:// store (zstd)
  load      Store.open_manifest(oid) + iterate every entry (verify, then stream-validate)
  diff      diff() of two stored manifests, 1% of the files changed, both streamed

The manifests describe a plausible tree: top-NNN/dir NN/ folders of 100 files each, random-looking ids.
Not collected by pytest (tests/bench is excluded in pyproject.toml).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve()
FILES_PER_DIR = 100


def entries(n: int, variant: int) -> Iterator[object]:
    """About `n` entries in tree order; variant 1 changes the content of every 100th file."""
    import blake3
    import xxhash

    from regen.store import Entry

    made = 0
    top = 0
    while made < n:
        a = f"top-{top:03d}"
        yield Entry(a, "dir", 0o755)
        made += 1
        for mid in range(100):
            if made >= n:
                return
            b = f"{a}/dir {mid:02d}"  # spaces in names: the canonical form must cope
            yield Entry(b, "dir", 0o755)
            made += 1
            for f in range(FILES_PER_DIR):
                if made >= n:
                    return
                i = made
                changed = variant == 1 and i % 100 == 0
                seed = i.to_bytes(8, "little") + (b"v2" if changed else b"")
                oid = blake3.blake3(seed).hexdigest()  # random-looking ids: realistic size and compression
                yield Entry(f"{b}/file-{f:03d}.dat", "file", 0o644, 1000 + i % 5000, oid, xxhash.xxh3_128_hexdigest(seed))
                made += 1
        top += 1


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def phase(name: str, work: Path, n: int) -> dict[str, object]:
    from regen.store import ManifestWriter, Store, diff

    store_url = f"file://{work / 'store'}"
    t0 = time.perf_counter()
    out: dict[str, object] = {}
    if name == "baseline":
        pass
    elif name == "build":
        t_gen = time.perf_counter()
        for _ in entries(n, 0):  # what producing the entries costs, without any manifest code
            pass
        out["seconds_generate"] = time.perf_counter() - t_gen
        t0 = time.perf_counter()
        for variant in (0, 1):
            with open(work / f"m{variant}.jsonl", "wb") as fp:
                w = ManifestWriter(fp)
                w.add_all(entries(n, variant))  # type: ignore[arg-type]
            out[f"oid{variant}"] = w.oid
            out[f"entries{variant}"] = w.stats.entries
            out[f"bytes{variant}"] = (work / f"m{variant}.jsonl").stat().st_size
            if variant == 0:
                out["seconds_one"] = time.perf_counter() - t0
    elif name == "store":
        store = Store.init(store_url)
        for variant in (0, 1):
            store.put_file(str(work / f"m{variant}.jsonl"))
            if variant == 0:
                out["seconds_one"] = time.perf_counter() - t0
        out["stored_bytes"] = sum(p.stat().st_size for p in (work / "store" / "objects").rglob("*") if p.is_file())
    elif name == "load":
        store = Store.open(store_url)
        oid = json.loads((work / "oids.json").read_text())["oid0"]
        count = 0
        with store.open_manifest(oid) as it:
            for _ in it:
                count += 1
        out["entries"] = count
    elif name == "diff":
        store = Store.open(store_url)
        oids = json.loads((work / "oids.json").read_text())
        counts: dict[str, int] = {}
        with store.open_manifest(oids["oid0"]) as a, store.open_manifest(oids["oid1"]) as b:
            for change in diff(a, b):
                counts[change.kind] = counts.get(change.kind, 0) + 1
        out["changes"] = counts
    out["seconds"] = time.perf_counter() - t0
    out["peak_mb"] = peak_mb()
    return out


def run_child(name: str, work: Path, n: int) -> dict[str, object]:
    proc = subprocess.run([sys.executable, str(HERE), "--phase", name, "--work", str(work), "--entries", str(n)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        print(json.dumps(phase(args.phase, args.work, args.entries)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="regen-manifest-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = {}
        for name in ("baseline", "build", "store", "load", "diff"):
            results[name] = r = run_child(name, work, args.entries)
            if name == "build":
                (work / "oids.json").write_text(json.dumps({"oid0": r["oid0"], "oid1": r["oid1"]}))
        b = results["build"]
        print(f"manifest scale: {b['entries0']:,} entries, {b['bytes0'] / 1e6:.1f} MB canonical, "
              f"stored (zstd) {results['store']['stored_bytes'] / 2e6:.1f} MB each; python {sys.version.split()[0]}")
        print(f"{'phase':<10} {'seconds':>9} {'peak RSS MB':>12}  notes")
        base = float(results["baseline"]["peak_mb"])  # type: ignore[arg-type]
        rows = [
            ("baseline", results["baseline"]["seconds"], "import regen.store only"),
            ("build", b["seconds_one"], f"ManifestWriter to a local file, one manifest (of which "
                                        f"{float(b['seconds_generate']):.2f} s making test entries; RSS: two built)"),
            ("store", results["store"]["seconds_one"], "Store.put_file to file:// (one manifest; RSS: two)"),
            ("load", results["load"]["seconds"], f"open_manifest + iterate {results['load']['entries']:,} entries"),
            ("diff", results["diff"]["seconds"], f"two stored manifests streamed: {results['diff']['changes']}"),
        ]
        for name, secs, note in rows:
            peak = float(results[name]["peak_mb"])  # type: ignore[arg-type]
            print(f"{name:<10} {float(secs):>9.2f} {peak:>12.1f}  {note}")  # type: ignore[arg-type]
        print(f"(peak RSS includes the {base:.1f} MB baseline of the interpreter and imports)")
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
