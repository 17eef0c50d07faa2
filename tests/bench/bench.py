"""regen side by side with git, xxhsum, rsync, OSTree and restic on the same trees.

Run through contrib/bench.sh (which installs the anchors). Not collected by pytest.

    python tests/bench/bench.py --size small --repeat 3 [--json out.json] [--work DIR]

Every operation runs once untimed (warm page cache), then --repeat times; the table shows
median and min-max seconds, the ratio regen / anchor of the medians, and peak RSS of the
regen command (from wait4's rusage of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SIZES = {
    # files, total bytes (approximate), big-file share
    "tiny": (400, 4 << 20),
    "small": (20_000, 300 << 20),
    "large": (100_000, 1536 << 20),
}
BIN = Path(sys.executable).parent


@dataclass
class Timing:
    op: str
    tool: str
    samples: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")


def run(cmd: list[str] | str, *, cwd: Path | None = None, env: dict[str, str] | None = None,
        check: bool = True, quiet: bool = True) -> tuple[float, float, int]:
    """Run a command; return (seconds, peak RSS MiB of the child, exit status)."""
    full_env = dict(os.environ, **(env or {}))
    shell = isinstance(cmd, str)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, shell=shell,
                            stdout=subprocess.DEVNULL if quiet else None, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if check and rc != 0:
        raise SystemExit(f"command failed ({rc}): {cmd}\n{err[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, rc


# ---------------------------------------------------------------------------------------------
# deterministic trees


def gen_tree(root: Path, files: int, total: int, seed: int) -> list[str]:
    """Many small files, a few multi-megabyte binaries, deep nesting, symlinks. Returns file list."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    big_count = max(1, files // 400)
    big_total = total // 2
    small_total = total - big_total
    small_avg = max(256, small_total // max(1, files - big_count))
    dirs = [""]
    made: list[str] = []
    for i in range(max(1, files // 25)):
        parent = rng.choice(dirs[-200:]) if rng.random() < 0.7 else rng.choice(dirs)
        depth = parent.count("/") + 1 if parent else 0
        if depth > 9:
            parent = ""
        d = f"{parent}/d{i:05d}" if parent else f"d{i:05d}"
        (root / d).mkdir()
        dirs.append(d)
    pool = os.urandom(1 << 20) + bytes(rng.getrandbits(8) for _ in range(64))
    for i in range(files):
        d = rng.choice(dirs)
        name = f"{d}/f{i:06d}.{rng.choice(['txt', 'bin', 'so', 'py', 'dat'])}" if d else f"f{i:06d}.dat"
        if i < big_count:
            size = rng.randint(big_total // big_count // 2, big_total // big_count * 3 // 2)
        else:
            size = int(rng.expovariate(1 / small_avg))
        _write(root / name, size, rng, pool)
        made.append(name)
    for i in range(max(1, files // 100)):
        target = rng.choice(made)
        d = rng.choice(dirs)
        link = f"{d}/l{i:05d}" if d else f"l{i:05d}"
        os.symlink(os.path.relpath(target, d or "."), root / link)
    return made


def _write(path: Path, size: int, rng: random.Random, pool: bytes) -> None:
    out = bytearray()
    header = f"{path.name} {rng.getrandbits(64)}\n".encode()
    out += header
    while len(out) < size:
        off = rng.randrange(0, len(pool) - 4096)
        out += pool[off : off + min(1 << 16, size - len(out))]
    path.write_bytes(bytes(out[:size]) if size >= len(header) else header[:size])


def make_version_b(a: Path, b: Path, files: list[str], seed: int) -> dict[str, int]:
    """B = A with ~1% of files modified, deleted and created."""
    shutil.copytree(a, b, symlinks=True)
    rng = random.Random(seed + 1)
    n = max(3, len(files) // 100)
    chosen = rng.sample(files, n)
    links = {str(p.relative_to(b)) for p in b.rglob("l*") if p.is_symlink()}
    modified = chosen[: n // 2]
    deleted = [f for f in chosen[n // 2 : n * 3 // 4]]
    for f in modified:
        data = bytearray((b / f).read_bytes() or b"x")
        data[rng.randrange(len(data))] ^= 0xFF
        data += b"modified\n"
        (b / f).write_bytes(bytes(data))
    for f in deleted:
        (b / f).unlink()
    for lk in links:  # drop links whose target was deleted, keeping B valid
        if not os.path.exists(b / lk):
            os.unlink(b / lk)
    created = n - len(modified) - len(deleted)
    pool = os.urandom(1 << 18)
    for i in range(created):
        d = os.path.dirname(rng.choice(files))
        _write(b / d / f"new{i:05d}.dat", rng.randint(100, 20000), rng, pool)
    return {"modified": len(modified), "deleted": len(deleted), "created": created}


def tree_stats(root: Path) -> tuple[int, int]:
    n = total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                n += 1
                total += os.path.getsize(p)
    return n, total


# ---------------------------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, work: Path, repeat: int) -> None:
        self.work = work
        self.repeat = repeat
        self.results: list[Timing] = []
        self.facts: dict[str, object] = {}

    def measure(self, op: str, tool: str, cmd: list[str] | str, *, setup: object = None, cwd: Path | None = None,
                env: dict[str, str] | None = None, warm: bool = True) -> Timing:
        t = Timing(op, tool)
        rounds = self.repeat + (1 if warm else 0)
        for i in range(rounds):
            if callable(setup):
                setup()
            secs, rss, _ = run(cmd, cwd=cwd, env=env)
            if warm and i == 0:
                continue
            t.samples.append(secs)
            t.peak_rss_mb = max(t.peak_rss_mb, rss)
        self.results.append(t)
        print(f"  {op:28s} {tool:28s} {t.median:8.3f}s  (rss {t.peak_rss_mb:.0f} MiB)", flush=True)
        return t

    def regen(self, *args: str) -> list[str]:
        return [str(BIN / "regen"), *args]

    def regend(self, *args: str) -> list[str]:
        return [str(BIN / "regend"), *args]


def write_client_config(path: Path, store: str, root: Path, state: Path, pub: Path, host: str) -> None:
    path.write_text(
        f'store = "{store}"\nchannel = "bench"\nhost = "{host}"\nroot = "{root}"\nstate_dir = "{state}"\n'
        f'trusted_keys = ["{pub}"]\n'
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: .bench/<size>)")
    ap.add_argument("--json", type=Path, default=None, help="write results as JSON here")
    ap.add_argument("--skip", default="", help="comma-separated anchors to skip (git,xxhsum,ostree,restic,rsync)")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    files, total = SIZES[args.size]
    work = args.work or Path(".bench") / args.size
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    work = work.resolve()
    b = Bench(work, args.repeat)
    a_tree, b_tree = work / "A", work / "B"
    print(f"== generating {args.size} trees (seed {args.seed})", flush=True)
    listing = gen_tree(a_tree, files, total, args.seed)
    change = make_version_b(a_tree, b_tree, listing, args.seed)
    nfiles, nbytes = tree_stats(a_tree)
    b.facts.update(size=args.size, files=nfiles, bytes=nbytes, change=change, repeat=args.repeat,
                   cores=os.cpu_count(), date=time.strftime("%Y-%m-%d"))
    print(f"   A: {nfiles} files, {nbytes / 1e6:.0f} MB; B: {change}", flush=True)
    env = {"REGEN_CACHE_DIR": str(work / "cache"), "XDG_CACHE_HOME": str(work / "xdg-cache")}

    # -- 3. snapshot ---------------------------------------------------------------------------
    print("== snapshot", flush=True)
    key = work / "admin.key"
    run(b.regen("keygen", str(key)))
    store_url = f"file://{work / 'store'}"

    def fresh_store() -> None:
        shutil.rmtree(work / "store", ignore_errors=True)
        shutil.rmtree(work / "xdg-cache", ignore_errors=True)
        run(b.regen("init", store_url))

    snap = ["--store", store_url, "--key", str(key), "--channel", "bench", "-m", "bench", "--quiet"]
    b.measure("snapshot (first)", "regen snapshot", b.regen("snapshot", str(a_tree), *snap), setup=fresh_store,
              env=env, warm=False)
    b.measure("snapshot (unchanged)", "regen snapshot", b.regen("snapshot", str(a_tree), *snap), env=env)
    if "restic" not in skip:
        renv = {"RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(work / "restic")}

        def fresh_restic() -> None:
            shutil.rmtree(work / "restic", ignore_errors=True)
            shutil.rmtree(work / "restic-cache", ignore_errors=True)
            run(["restic", "init", "-q"], env=renv)

        rcmd = ["restic", "backup", "-q", "--cache-dir", str(work / "restic-cache"), str(a_tree)]
        b.measure("snapshot (first)", "restic backup", rcmd, setup=fresh_restic, env=renv, warm=False)
        b.measure("snapshot (unchanged)", "restic backup", rcmd, env=renv)
    if "ostree" not in skip:
        def fresh_ostree() -> None:
            shutil.rmtree(work / "ostree", ignore_errors=True)
            run(["ostree", "init", "--repo", str(work / "ostree"), "--mode=archive"])

        ocmd = ["ostree", "commit", "--repo", str(work / "ostree"), "-b", "bench", "--tree=dir=" + str(a_tree)]
        b.measure("snapshot (first)", "ostree commit", ocmd, setup=fresh_ostree, warm=False)
        b.measure("snapshot (unchanged)", "ostree commit", ocmd)
    run(b.regen("snapshot", str(a_tree), *snap, "--publish"), env=env)

    # -- client install ---------------------------------------------------------------------------
    client, state = work / "client", work / "state"
    cfg = work / "regend.toml"
    write_client_config(cfg, store_url, client, state, Path(str(key) + ".pub"), "bench-host")

    def fresh_client() -> None:  # an empty root and state_dir each time: every sample is a first install
        shutil.rmtree(client, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
        client.mkdir()
        os.sync()  # (no dirty data left by what ran before: each tool's sync flushes only its own)

    first = b.measure("first install", "regend run --once", b.regend("run", "--once", "--config", str(cfg)),
                      setup=fresh_client, warm=False)
    b.facts["install_seconds"] = round(first.median, 3)
    b.facts["install_rss_mb"] = round(first.peak_rss_mb, 1)
    # the same tree into an empty directory, same durability (synced before the command returns)
    landing = work / "install-anchor"

    def fresh_landing() -> None:
        shutil.rmtree(landing, ignore_errors=True)
        os.sync()

    if "rsync" not in skip:
        b.measure("first install", "rsync -aHAX + sync", f"rsync -aHAX {a_tree}/ {landing}/ && sync",
                  setup=fresh_landing, warm=False)
    if "restic" not in skip:
        b.measure("first install", "restic restore + sync",
                  f"restic restore -q latest --cache-dir {work / 'restic-cache'} --target {landing} && sync",
                  setup=fresh_landing, env=renv, warm=False)
    fresh_landing()
    # a client is checked long after it was written: let the racy-timestamp window (2 s) pass
    # and let one ordinary run settle the index, as the next scheduled run would; that run also
    # copies back into the cache the objects the install moved into the tree (daemon/run/refill.py),
    # so it is timed too: the install's deferred cost
    time.sleep(2.5)
    secs, rss, _ = run(b.regend("run", "--once", "--config", str(cfg)))
    b.facts["next_run_seconds"] = round(secs, 3)
    nxt = Timing("first install", "regend: the next run (cache refill)", [secs], rss)
    b.results.append(nxt)
    print(f"  {nxt.op:28s} {nxt.tool:28s} {nxt.median:8.3f}s  (rss {rss:.0f} MiB)", flush=True)

    # -- 1. no-change check ---------------------------------------------------------------------------
    print("== no-change check", flush=True)
    b.measure("no-change check", "regend check", b.regend("check", "--config", str(cfg)))
    if "git" not in skip:
        gitdir = work / "gitcopy"
        shutil.copytree(a_tree, gitdir, symlinks=True)
        genv = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
                "GIT_COMMITTER_EMAIL": "b@b"}
        run("git init -q && git config core.untrackedCache true && git add -A && git commit -qm a "
            "&& git update-index --untracked-cache && git status >/dev/null", cwd=gitdir, env=genv)
        b.measure("no-change check", "git status", ["git", "status", "--porcelain"], cwd=gitdir)
    b.measure("no-change check", "find -printf (stat floor)", f"find {a_tree} -printf '%s %T@\\n' >/dev/null")

    # -- 2. full verify -------------------------------------------------------------------------------
    print("== full verify", flush=True)
    b.measure("full verify", "regend check --verify", b.regend("check", "--verify", "--config", str(cfg)))
    if "xxhsum" not in skip:
        b.measure("full verify", "xxhsum -H2 (2 workers)",
                  f"find {a_tree} -type f -print0 | xargs -0 -P2 -n 2000 xxhsum -H2 >/dev/null")
    if "ostree" not in skip:
        b.measure("full verify", "ostree fsck", ["ostree", "fsck", "--repo", str(work / "ostree"), "-q"])

    # -- 4. update A -> B -------------------------------------------------------------------------------
    print("== update A->B", flush=True)
    run(b.regen("snapshot", str(b_tree), *snap), env=env)
    gen_b = _latest_generation(b, store_url)
    run(b.regen("snapshot", str(a_tree), *snap), env=env)
    gen_a = _latest_generation(b, store_url)
    flip = {"to": "B", "current": _latest_generation(b, store_url, published=True)}

    def publish_next() -> None:
        # alternate A -> B -> A: each update is a ~1% change of the client
        target = gen_b if flip["to"] == "B" else gen_a
        common = ["--store", store_url, "--key", str(key), "--channel", "bench", "--quiet"]
        if target > flip["current"]:
            run(b.regen("publish", str(target), *common))
            flip["current"] = target
        else:
            run(b.regen("rollback", "--to", str(target), *common))
            flip["current"] = _latest_generation(b, store_url, published=True)
        flip["to"] = "A" if flip["to"] == "B" else "B"

    b.measure("update A->B (1%)", "regend run --once", b.regend("run", "--once", "--config", str(cfg)),
              setup=publish_next)
    latest = work / "store" / "reports" / "bench-host" / "latest.json"
    try:
        rep = json.loads(latest.read_text())
        b.facts["update_bytes_fetched"] = rep.get("bytes_fetched")
        b.facts["update_new_content_bytes"] = _new_content_bytes(a_tree, b_tree)
    except (OSError, ValueError):
        pass
    if "rsync" not in skip:
        rs_client = work / "rsync-client"
        shutil.copytree(a_tree, rs_client, symlinks=True)
        src = {"n": 0}

        def rs_cmd_setup() -> None:
            src["n"] += 1

        def rsync_cmd() -> str:
            return f"rsync -a --delete {b_tree if src['n'] % 2 else a_tree}/ {rs_client}/"

        t = Timing("update A->B (1%)", "rsync -a --delete")
        for i in range(args.repeat + 1):
            rs_cmd_setup()
            secs, _, _ = run(rsync_cmd())
            if i:
                t.samples.append(secs)
        b.results.append(t)
        print(f"  {t.op:28s} {t.tool:28s} {t.median:8.3f}s", flush=True)
    if "ostree" not in skip:
        orepo = work / "ostree"
        run(["ostree", "commit", "--repo", str(orepo), "-b", "benchB", "--tree=dir=" + str(b_tree)])
        crepo = work / "ostree-client"
        t = Timing("update A->B (1%)", "ostree pull-local+checkout")
        for i in range(args.repeat + 1):
            shutil.rmtree(crepo, ignore_errors=True)
            shutil.rmtree(work / "ostree-co", ignore_errors=True)
            run(["ostree", "init", "--repo", str(crepo), "--mode=bare-user"])
            run(["ostree", "pull-local", "--repo", str(crepo), str(orepo), "bench"])
            run(["ostree", "checkout", "--repo", str(crepo), "-U", "bench", str(work / "ostree-co")])
            secs1, _, _ = run(["ostree", "pull-local", "--repo", str(crepo), str(orepo), "benchB"])
            shutil.rmtree(work / "ostree-co")
            secs2, _, _ = run(["ostree", "checkout", "--repo", str(crepo), "-U", "benchB", str(work / "ostree-co")])
            if i:
                t.samples.append(secs1 + secs2)
        b.results.append(t)
        print(f"  {t.op:28s} {t.tool:28s} {t.median:8.3f}s", flush=True)

    report(b, args.json)


def _latest_generation(b: Bench, store_url: str, published: bool = False) -> int:
    out = subprocess.run(b.regen("log", "--store", store_url, "--channel", "bench", "--json"), capture_output=True,
                         text=True, check=True).stdout
    data = json.loads(out)
    if published:
        return int(data["channels"][0]["ref"])
    gens = [g for ch in data["channels"] for g in ch["generations"]]
    return max(int(g["number"]) for g in gens)


def _new_content_bytes(a: Path, b: Path) -> int:
    """Bytes of file content in B that A does not have (what an ideal update must read)."""
    import hashlib

    def digests(root: Path) -> dict[str, int]:
        out = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    data = Path(p).read_bytes()
                    out[hashlib.blake2b(data).hexdigest()] = len(data)
        return out

    da, db = digests(a), digests(b)
    return sum(size for h, size in db.items() if h not in da)


def report(b: Bench, json_path: Path | None) -> None:
    by_op: dict[str, list[Timing]] = {}
    for t in b.results:
        by_op.setdefault(t.op, []).append(t)
    print()
    print(f"regen benchmark: {b.facts.get('files')} files, {int(b.facts.get('bytes', 0)) / 1e6:.0f} MB, "
          f"{b.facts.get('cores')} cores, repeat {b.facts.get('repeat')}, {b.facts.get('date')}")
    print(f"| operation | tool | median s | min-max s | regen ÷ tool | peak RSS MiB |")
    print(f"|---|---|---:|---:|---:|---:|")
    rows = []
    for op, ts in by_op.items():
        ours = next((t for t in ts if t.tool.startswith("regen")), None)
        for t in ts:
            ratio = ours.median / t.median if ours and not t.tool.startswith("regen") and t.median > 0 else None
            rng = f"{min(t.samples):.3f}-{max(t.samples):.3f}" if t.samples else "-"
            rss = f"{t.peak_rss_mb:.0f}" if t.tool.startswith("regen") else ""
            print(f"| {op} | {t.tool} | {t.median:.3f} | {rng} | {f'{ratio:.2f}' if ratio else ''} | {rss} |")
            rows.append({"op": op, "tool": t.tool, "median": t.median, "samples": t.samples,
                         "ratio_regen_over_tool": ratio, "peak_rss_mb": t.peak_rss_mb})
    for k in ("install_seconds", "install_rss_mb", "update_bytes_fetched", "update_new_content_bytes"):
        if k in b.facts:
            print(f"{k}: {b.facts[k]}")
    if json_path:
        json_path.write_text(json.dumps({"facts": b.facts, "results": rows}, indent=1))
        print(f"written {json_path}")


if __name__ == "__main__":
    main()
