"""How `regen` describes a tree and its generations for people: snapshot, show and diff text (pure).

Nothing here prints: render.py prints what these build (as fleetview.py does for `regen
status`). Paths, messages and procedure commands go through `shown`, so a name with control
characters cannot rewrite the terminal.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from rich.filesize import decimal

from .scan import shown

if TYPE_CHECKING:
    from regen.store import Entry, Procedure

    from .history import GenerationInfo
    from .snapshot import SnapshotResult


def procedure_line(p: Procedure) -> str:
    """One signed procedure on one line: name, trigger, command, and how it runs."""
    extra = ", chroot" if p.chroot else ""
    return (f"{shown(p.name)}: {p.stage} {'/'.join(p.on)} of {', '.join(map(shown, p.when))} -> "
            f"{shown(shlex.join(p.run))} (timeout {p.timeout:g} s, on failure {p.failure}{extra})")


def tree_line(stats: Mapping[str, int]) -> str:
    return (f"{stats.get('entries', 0):,} entries: {stats.get('files', 0):,} files, {stats.get('dirs', 0):,} dirs, "
            f"{stats.get('symlinks', 0):,} symlinks, {decimal(stats.get('bytes', 0))}")


def snapshot_lines(r: SnapshotResult) -> Iterator[tuple[str, str | None]]:
    """(line, style) of a new generation: its state, tree, changes, upload, reads and policy."""
    t, s, c = r.tree, r.tree.stats, r.tree.changes
    state = ("published" if r.published
             else f"not published (publish with 'regen publish {r.number} --channel {r.channel}')")
    yield f"generation {r.number} of channel {r.channel}: {state}", "bold"
    yield f"  tree      {tree_line(s)}", None
    base = f"generation {r.parent}" if r.parent is not None else "an empty tree (first generation)"
    yield (f"  changes   vs {base}: {c['added']:,} added, {c['removed']:,} removed, "
           f"{c['modified']:,} modified, {c['meta']:,} mode changes"), None
    yield f"  uploaded  {t.objects_uploaded:,} new objects, {decimal(t.bytes_uploaded)} new to the store", None
    yield (f"  read      {t.files_hashed:,} files ({decimal(t.bytes_hashed)}); "
           f"{t.files_reused:,} unchanged files not read"), None
    yield (f"  policy    from {r.policy_from}: preserve {list(r.policy.preserve)}, base {list(r.policy.base)}, "
           f"exclude {list(r.policy.exclude)}, junk {r.policy.junk}"), None
    for p in r.policy.procedures:
        yield f"  procedure {procedure_line(p)}", None
    if r.expires:
        yield f"  expires   {r.expires}", None


def show_rows(info: GenerationInfo) -> list[tuple[str, str]]:
    """(label, value) rows of `regen show`: one generation, its signature and its policy."""
    g = info.generation
    rows = [("generation", f"{g.number} of channel {g.channel}" + ("  (current)" if info.current else "")),
            ("created", g.created), ("message", shown(g.message)),
            ("parent", "-" if g.parent is None else str(g.parent)), ("manifest", g.manifest),
            ("expires", g.expires or "never"),
            ("signed by", ", ".join(info.signed_by) or "-"),
            ("signature",
             "verifies with the trusted keys" if info.verified else f"NOT verified: {info.verify_error}"),
            ("tree", tree_line(g.stats)),
            ("preserve", ", ".join(g.policy.preserve) or "-"), ("base", ", ".join(g.policy.base) or "-"),
            ("exclude", ", ".join(g.policy.exclude) or "-"), ("junk", g.policy.junk)]
    rows += [("procedure", procedure_line(p)) for p in g.policy.procedures]
    return rows


def meta_change(old: Entry, new: Entry) -> str:
    """What a `meta` change changed: mode, owner, group, extended attributes, mtime, hard link."""
    parts = []
    if old.mode != new.mode:
        parts.append(f"mode {old.mode:o} -> {new.mode:o}")
    if (old.uid, old.user) != (new.uid, new.user):
        parts.append(f"owner {old.user or old.uid} -> {new.user or new.uid}")
    if (old.gid, old.group) != (new.gid, new.group):
        parts.append(f"group {old.group or old.gid} -> {new.group or new.gid}")
    if old.xattrs != new.xattrs:
        names = sorted({n for n, _ in old.xattrs} ^ {n for n, _ in new.xattrs}
                       | {n for n, v in old.xattrs if dict(new.xattrs).get(n, v) != v})
        parts.append("xattrs " + ", ".join(names))
    if old.mtime != new.mtime:
        parts.append("mtime")
    if old.link != new.link:
        parts.append(f"hard link {old.link or '-'} -> {new.link or '-'}")
    if old.sparse != new.sparse:
        parts.append("sparse" if new.sparse else "not sparse")
    return "; ".join(parts) or "metadata"


__all__ = ["meta_change", "procedure_line", "show_rows", "snapshot_lines", "tree_line"]
