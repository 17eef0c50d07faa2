"""Everything `regen` shows: rich tables and text for people, JSON for programs (the only module that prints).

Results go to stdout; warnings, errors and progress bars go to stderr, so `--json` output
can always be piped. Progress bars appear only when stderr is a terminal and --quiet is
not given. --quiet prints only what a script needs (a generation number, nothing else).

JSON shapes (stable; new keys may be added, existing ones keep their meaning):
  init      {"url", "store_id", "compression"}
  keygen    {"secret", "public", "keyid"}
  snapshot  {"channel", "number", "parent", "published", "expires", "policy", "policy_from", "manifest",
             "stats": {entries, files, dirs, symlinks, bytes}, "changes": {added, removed, modified, meta},
             "uploaded": {objects, bytes}, "files_hashed", "files_reused", "bytes_hashed", "skipped", "warnings"}
  publish / rollback  {"channel", "number", "previous", "content_of"}
  log       {"channels": [{"channel", "ref", "generations": [{number, created, message, parent, manifest,
             expires, files, bytes, current}]}]}
  show      {"channel", "number", "created", "message", "parent", "manifest", "expires", "policy", "stats",
             "signed_by", "verified", "verify_error", "current", "store_id"}
  diff      {"channel", "from", "to", "changes": [{"kind", "path", "old", "new"}], "stats": {added, removed,
             modified, meta}}  -- entries are {path, kind, mode, size, oid, xxh, target}
  host set / rm  {"host", "number", "manifest", "removed", ...for set: "sealed_to" (host key id, null with
             --plaintext) and the snapshot's tree keys}
  host show {"host", "number", "manifest", "removed", "created", "message", "expires", "signed_by",
             "verified", "procedures", "sealed_to", "entries"}  -- a sealed overlay's entries are [] (only its host
             can read them)
  host enroll {"host", "keyid", "enrolled", "replaced", "sealed_to_old"}
  status    {"generated", "channel", "stale_after_seconds", "heads", "counts", "hosts": [{host, state,
             reported_outcome, channel, generation, current, behind, last_seen, age_seconds, drift, findings,
             errors}], "actions": {"replace_hardware", "stuck", "misconfigured", "drifting_paths", "drift_min_hosts",
             "quarantined", "failing", "stale": [{host, last_seen, age_seconds, errors}]}}
  history   {"host", "entries": [{when, state, channel, generation, drift, repaired, findings, gauges, errors,
             latest}]}
  gc        {"dry_run", "keep", "grace_seconds", "keep_reports_seconds", "stats", "generations_dropped"}
  fsck      {"damaged", "objects_checked", "generations_checked", "findings": [{kind, subject, detail, severity}]}
  migrate   {"packed", "packed_bytes", "loose_kept", "loose_deleted", "was_packed"}
  unlock    {"removed": null | {owner, host, pid, created, expires}}
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.filesize import decimal
from rich.table import Table

from regen.store import MAX_HISTORY, Change, CheckResult, LeaseInfo, MigrateResult, json_safe
from regen.store.errors import RegenError

from . import fleetview, treeview
from .fleet import FleetStatus
from .history import ChannelLog, DiffSpec, GenerationInfo
from .hostkeys import EnrollResult
from .maintenance import GcResult, InitResult, KeygenResult
from .overlays import OverlayInfo, OverlayResult, entry_dict
from .progress import NoProgress
from .progress import Progress as ProgressSink
from .progressbar import RichProgress
from .publish import PublishResult
from .roots import RootResult
from .scan import shown
from .snapshot import SnapshotResult
from .timeline import Timeline

PROG = "regen"


def error(e: RegenError) -> None:
    """The one line a user error gets on stderr (a traceback first only for errors that ask for it)."""
    if e.show_traceback:
        traceback.print_exception(e, file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {shown(e.one_line())}\n")
    sys.stderr.flush()


def usage_error(message: str, command: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message} (see '{command} --help')\n".replace("\n", " ").rstrip() + "\n")


def interrupted() -> None:
    sys.stderr.write(f"{PROG}: interrupted\n")


def internal_error() -> None:
    traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: internal error: this is a bug in regen; please report it with the traceback above\n")


class Output:
    """How one command shows its result: JSON, quiet, or rich text."""

    def __init__(self, *, json: bool = False, quiet: bool = False) -> None:
        self.json = json
        self.quiet = quiet
        self.out = Console(markup=False, highlight=False, emoji=False)
        self.err = Console(stderr=True, markup=False, highlight=False, emoji=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            self.out.width = 160  # piped: keep table rows on one line where possible (COLUMNS wins)

    # -- plumbing -------------------------------------------------------------------------------
    def progress(self) -> ProgressSink:
        return RichProgress(self.err) if self.err.is_terminal and not self.quiet else NoProgress()

    def _json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(json_safe(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")

    def line(self, text: str = "", style: str | None = None) -> None:
        self.out.print(text, style=style, soft_wrap=True)

    def warn(self, message: str) -> None:
        if not self.quiet:
            sys.stderr.write(f"{PROG}: warning: {shown(message)}\n")

    # -- init, keygen ------------------------------------------------------------------------------
    def init(self, r: InitResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if not self.quiet:
            self.line(f"created an empty regen store at {r.url} (id {r.store_id}, compression {r.compression})")
            self.line("next: 'regen keygen FILE', then 'regen snapshot SRC --channel NAME -m MESSAGE --publish'")

    def keygen(self, r: KeygenResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(r.keyid)
        self.line(f"secret key  {r.secret}  (mode 0600: keep it private, it signs generations)")
        self.line(f"public key  {r.public}  (copy it to every client and list it in trusted_keys)")
        self.line(f"key id      {r.keyid}")

    # -- snapshot, publish, rollback ----------------------------------------------------------------
    def snapshot(self, r: SnapshotResult) -> None:
        for w in r.warnings:
            self.warn(w)
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(str(r.number))
        for text, style in treeview.snapshot_lines(r):
            self.line(text, style=style)

    def root(self, r: RootResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(str(r.version))
        self.line(f"root version {r.version} of store {r.store_id}: root keys {', '.join(r.root_keys)} "
                  f"(threshold {r.root_threshold}), publisher keys {', '.join(r.publisher_keys)}")
        if r.missing:
            self.line(f"needs {r.missing} more root signature(s) before clients accept it: "
                      f"regen root sign {r.version} --root-key FILE")

    def publish(self, r: PublishResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(str(r.number))
        was = f" (was {r.previous})" if r.previous is not None else ""
        was += f", numbering epoch {r.epoch}" if r.epoch else ""
        if r.content_of is not None:
            self.line(f"channel {r.channel} now points at generation {r.number}{was}, "
                      f"which holds the content of generation {r.content_of}")
        else:
            self.line(f"channel {r.channel} now points at generation {r.number}{was}")

    # -- history ------------------------------------------------------------------------------------
    def log(self, logs: list[ChannelLog]) -> None:
        if self.json:
            return self._json({"channels": [c.as_dict() for c in logs]})
        if not logs and not self.quiet:
            self.line("no generation yet: create one with 'regen snapshot SRC --channel NAME -m MESSAGE'")
        for c in logs:
            if self.quiet:
                for e in c.entries:
                    self.line(str(e.generation.number))
                continue
            table = Table(title=f"channel {c.channel} (current: {c.ref if c.ref is not None else 'none published'})",
                          title_justify="left")
            for col in ("", "gen", "created", "parent", "files", "size", "message"):
                table.add_column(col, justify="right" if col in ("gen", "parent", "files", "size") else "left")
            for e in reversed(c.entries):
                g = e.generation
                table.add_row("*" if e.current else "", str(g.number), g.created,
                              "" if g.parent is None else str(g.parent), f"{g.stats.get('files', 0):,}",
                              decimal(g.stats.get("bytes", 0)), shown(g.message))
            self.out.print(table)

    def show(self, info: GenerationInfo) -> None:
        if self.json:
            return self._json(info.as_dict())
        for k, v in treeview.show_rows(info):
            self.line(f"{k:<10}  {v}")

    def diff(self, spec: DiffSpec, changes: Iterator[Change]) -> None:
        """Streams: each change is printed as soon as the merge-join finds it."""
        counts = {"added": 0, "removed": 0, "modified": 0, "meta": 0}
        if self.json:
            sys.stdout.write(f'{{"channel": {json.dumps(spec.channel)}, "from": {spec.old.number}, '
                             f'"to": {spec.new.number}, "changes": [')
            for i, c in enumerate(changes):
                counts[c.kind] += 1
                item = {"kind": c.kind, "path": c.path, "old": entry_dict(c.old) if c.old else None,
                        "new": entry_dict(c.new) if c.new else None}
                sys.stdout.write(("," if i else "") + "\n  " + json.dumps(item, ensure_ascii=False))
            sys.stdout.write(f'\n], "stats": {json.dumps(counts)}}}\n')
            return
        marks = {"added": "+", "removed": "-", "modified": "M", "meta": "m"}
        for c in changes:
            counts[c.kind] += 1
            if not self.quiet:
                extra = f"  ({treeview.meta_change(c.old, c.new)})" if c.kind == "meta" and c.old and c.new else ""
                sys.stdout.write(f"{marks[c.kind]} {shown(c.path)}{extra}\n")
        sys.stdout.write(f"generation {spec.old.number} -> {spec.new.number}: {counts['added']} added, "
                         f"{counts['removed']} removed, {counts['modified']} modified, "
                         f"{counts['meta']} metadata changes\n")

    # -- host overlays ----------------------------------------------------------------------------------
    def overlay(self, r: OverlayResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(str(r.number))
        if r.manifest is None:
            return self.line(f"overlay of host {r.host} removed (tombstone version {r.number})")
        assert r.tree is not None
        s = r.tree.stats
        self.line(f"overlay version {r.number} of host {r.host}: {s['files']:,} files, {s['dirs']:,} dirs, "
                  f"{s['symlinks']:,} symlinks, {decimal(s['bytes'])}; {r.tree.objects_uploaded:,} new objects "
                  f"({decimal(r.tree.bytes_uploaded)}) uploaded"
                  + (f", sealed to host key {r.sealed_to}" if r.sealed_to else ", NOT sealed (--plaintext)"))

    def enrolled(self, r: EnrollResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        if self.quiet:
            return self.line(r.keyid)
        was = f" (replacing key {r.replaced})" if r.replaced else ""
        self.line(f"host {r.host} enrolled with key {r.keyid}{was}; its reports must now be signed with it")
        if r.sealed_to_old:  # (the host refuses its overlay until it is sealed to the new key)
            self.warn(f"the overlay of {r.host} is sealed to its old key: run 'regen host set {r.host} DIR' again")

    def overlay_info(self, info: OverlayInfo) -> None:
        if self.json:
            return self._json(info.as_dict())
        o = info.overlay
        state = ("removed (tombstone)" if o.manifest is None else f"sealed to host key {o.sealed.key}"
                 if o.sealed else f"{len(info.entries)} entries")
        self.line(f"overlay of host {o.host}: version {o.number}, {state}, created {o.created}, "
                  f"signed by {', '.join(info.signed_by) or '-'} ({'verifies' if info.verified else 'NOT verified'})")
        if o.message:
            self.line(f"message: {shown(o.message)}")
        for p in o.procedures:  # run by the host only where its channel's policy allows overlay procedures
            self.line(f"procedure {shown(p.name)}: {p.stage} {'/'.join(p.on)}, when {', '.join(map(shown, p.when))}: "
                      f"{' '.join(map(shown, p.run))}")
        if info.entries and not self.quiet:
            table = Table("kind", "mode", "size", "path")
            for e in info.entries:
                path = shown(e.path) + (f" -> {shown(e.target)}" if e.target else "")
                table.add_row(e.kind, f"{e.mode:04o}", decimal(e.size) if e.kind == "file" else "", path)
            self.out.print(table)

    # -- fleet -----------------------------------------------------------------------------------------
    def status(self, fleet: FleetStatus) -> None:
        if self.json:
            return self._json(fleet.as_dict())
        counts = ", ".join(f"{n} {state}" for state, n in fleet.counts().items() if n)
        heads = ", ".join(f"{c} at {n}" for c, n in sorted(fleet.heads.items())) or "no channel published"
        total = sum(fleet.counts().values())
        if not self.quiet:
            shown_of = f" ({len(fleet.hosts)} shown)" if len(fleet.hosts) != total else ""
            self.out.print(f"{total} hosts{shown_of}: {counts or 'none reported yet'}; {heads}", style="bold")
            if fleet.hosts:
                self._lines(fleetview.hosts_lines(fleet.hosts, self.out.width, shown))
        if not fleet.needs_attention:
            if not self.quiet:
                self.line("no action needed")
            return
        self.line("actions:", style="bold")
        for text in fleetview.action_lines(fleet, shown):
            self.line(text)

    def timeline(self, t: Timeline) -> None:
        if t.skipped:
            self.warn(f"{t.skipped:,} older history entries of host {t.host} were not read: at most the newest "
                      f"{MAX_HISTORY:,} are (more is a flapping host or someone writing its reports; "
                      f"'regen gc' prunes them)")
        if self.json:
            return self._json(t.as_dict())
        if self.quiet:
            return
        self.out.print(fleetview.timeline_table(t, self.out.width, shown))

    def _lines(self, lines: Iterator[tuple[str, str | None]]) -> None:
        """Many lines fast: styled on a terminal, plain and in one write when piped."""
        if self.out.is_terminal:
            for line, style in lines:
                self.out.print(line, style=style, highlight=False, soft_wrap=True)
        else:
            sys.stdout.write("".join(line + "\n" for line, _style in lines))
            sys.stdout.flush()

    def text(self, text: str) -> None:
        """A document produced elsewhere (already escaped for its format), as is."""
        sys.stdout.write(text)

    def serving(self, url: str) -> None:
        """`regen serve` listens (always printed: with port 0 it is the only way to learn the port)."""
        sys.stdout.write(f"serving the fleet at {url} (read-only; Ctrl-C stops)\n")
        sys.stdout.flush()

    def check(self, line: str) -> None:
        """The one line of `status --check` (a monitoring plugin's output)."""
        sys.stdout.write(shown(line) + "\n")

    # -- maintenance ------------------------------------------------------------------------------------
    def gc(self, r: GcResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        s = r.plan.stats()
        verb = "would delete" if r.dry_run else "deleted"
        self.line(f"{verb} {s['objects_to_delete']:,} objects ({decimal(s['bytes_to_free'])}) and "
                  f"{s['generations_to_delete']:,} generations; kept {s['generations_kept']:,} generations "
                  f"(newest {r.keep} per channel and every current one), "
                  f"{s['referenced_objects']:,} referenced objects, "
                  f"{s['young_unreferenced_kept']:,} unreferenced objects younger than the grace period")
        for path, why in r.plan.unverified:
            self.warn(f"{path} does not verify with the trusted keys: not counted, left in place ({why})")
        if "packs_to_delete" in s:  # a packed store: the repack
            self.line(f"packs: {verb} {s['packs_to_delete']:,} ({decimal(s['pack_bytes_to_free'])}), "
                      f"{s['blobs_to_rewrite']:,} live blobs rewritten into new packs, "
                      f"{s['stray_pack_files']:,} stray pack files")
        if r.history is not None:
            h = r.history.stats()
            days = (r.keep_reports_seconds or 0) // 86400
            age = f"older than {days} days" if r.keep_reports_seconds else "of any age"
            cap = f" or beyond the newest {r.max_reports:,} of a host" if r.max_reports else ""
            self.line(f"{verb} {h['history_to_delete']:,} report history entries {age}{cap}; "
                      f"kept {h['history_kept']:,} entries of {h['hosts']:,} "
                      f"hosts (each host's last state change is always kept)")
            for host in r.history.over_cap:
                self.warn(f"host {host} had more than {r.max_reports:,} history entries (a flapping host, or "
                          f"someone writing its reports)")

    def fsck(self, r: CheckResult) -> None:
        if self.json:
            return self._json({"damaged": r.damaged, "objects_checked": r.objects_checked,
                               "generations_checked": r.generations_checked,
                               "findings": [f.as_dict() for f in r.findings]})
        if r.findings and not self.quiet:
            table = Table("severity", "kind", "subject", "detail")
            for f in r.findings:
                table.add_row(f.severity, f.kind, shown(f.subject), shown(f.detail))
            self.out.print(table)
        if not self.quiet:
            verdict = "damage found" if r.damaged else "no damage found"
            self.line(f"checked {r.objects_checked:,} objects and {r.generations_checked:,} generations: {verdict}")

    def migrate(self, r: MigrateResult) -> None:
        if self.json:
            return self._json(r.as_dict())
        was = "was already packed; " if r.was_packed else "is now packed; "
        self.line(f"the store {was}{r.packed:,} objects copied into packs ({decimal(r.packed_bytes)}), "
                  f"{r.loose_deleted:,} loose copies removed, {r.loose_kept:,} left loose (larger than 4 MiB, "
                  "or damaged: see regen fsck)")

    def unlock(self, lease: LeaseInfo | None) -> None:
        if self.json:
            return self._json({"removed": None if lease is None else {
                "owner": lease.owner, "host": lease.host, "pid": lease.pid, "created": lease.created,
                "expires": lease.expires}})
        if lease is None:
            self.line("the store was not locked")
        else:
            self.line(f"removed the lock of {lease.owner} on {lease.host} (pid {lease.pid}), "
                      f"held since {lease.created}")
