"""fsck: every object's hash, every reference, every signature -- collected as findings.

A check never stops at the first problem; it yields `Finding` values and the CLI maps the
worst severity to an exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import layout
from .errors import BadSignature, StoreError, UnknownKey
from .findings import Finding
from .generation import Generation, Overlay
from .objects import ObjectId
from .packcheck import check_packs
from .pool import bounded_map, window_for
from .signing import PublicKey, open_envelope, peek_envelope
from .store import Store
from .timestamp import strip_timestamp


@dataclass(frozen=True, slots=True)
class CheckResult:
    findings: tuple[Finding, ...]
    objects_checked: int
    generations_checked: int

    @property
    def damaged(self) -> bool:
        return any(f.severity == "error" for f in self.findings)


def _kind(exc: StoreError) -> str:
    return "signature" if isinstance(exc, (BadSignature, UnknownKey)) else "record"


def fsck(store: Store, trusted: Mapping[str, PublicKey] | None = None, *, read_data: bool = True,
         repair: bool = False, progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Check the whole store and return every problem found (never raises for damage it finds).

    `trusted`: the keys records must be signed with (what clients are configured with). The
    store's keys/ folder is never trusted (anyone who can write the store can add a key there):
    without `trusted` signatures are not checked, which is reported as a warning, and with it a
    key file under keys/ that is not trusted is reported as a warning too. `read_data=False` skips
    reading every object (existence is still checked); `repair` moves corrupt objects aside.
    `progress(1, 0)` is called per object read.
    """
    findings: list[Finding] = []
    _ = store.config
    keys = dict(trusted) if trusted is not None else None
    if keys is None:
        findings.append(Finding("signature", "keys", "signatures not checked: no trusted key given", "warning"))
    else:
        for keyid in sorted(set(store.public_keys()) - set(keys)):
            findings.append(Finding("signature", layout.key_path(keyid), "key file of a key that is not trusted "
                                    "(keys/ confers no trust; remove it unless it is a known publisher)", "warning"))

    def open_record(data: bytes, where: str) -> dict[str, object]:
        return open_envelope(data, keys, where=where) if keys is not None else peek_envelope(data, where=where)

    objects = set(store.list_objects())

    def verify(oid: ObjectId) -> Finding | None:
        try:
            store.get_to(oid, _Discard())  # streamed: a 4 GB object costs a 1 MB buffer, not 4 GB
        except StoreError as exc:
            return Finding("corrupt", oid, exc.message)
        finally:
            if progress:
                progress(1, 0)
        return None

    if store.config.packed:  # packed blobs: the index list, indexes and packs, each pack read once
        packed = check_packs(store, read_data=read_data, finding=Finding, progress=progress)
        findings.extend(packed.findings)
        loose = set(objects)
        objects |= packed.blobs
    else:
        loose = objects

    if read_data:
        with ThreadPoolExecutor(store.concurrency) as pool:
            for f in bounded_map(pool, verify, sorted(loose), window_for(store.concurrency)):
                if f is not None:
                    findings.append(f)
                    if repair:
                        _set_aside(store, f.subject)

    manifests: dict[ObjectId, str] = {}
    generations = 0
    for channel in store.channels():
        for n in store.generation_numbers(channel):
            generations += 1
            where = layout.generation_path(channel, n)
            try:
                data = store.read_generation(channel, n)
                gen = Generation.from_record(open_record(data, where), where)
            except StoreError as exc:
                findings.append(Finding(_kind(exc), where, exc.message))
                continue
            if gen.channel != channel or gen.number != n or gen.store_id != store.store_id:
                findings.append(Finding("record", where, "record does not match its place (channel/number/store)"))
            manifests.setdefault(gen.manifest, where)
        ref = store.read_ref(channel)
        if ref is not None:
            try:
                gen = Generation.from_record(open_record(ref, f"refs/{channel}"))
                if gen.channel != channel or gen.store_id != store.store_id:
                    findings.append(Finding("ref", f"refs/{channel}",
                                            f"holds a record of channel {gen.channel!r} of store {gen.store_id}"))
                elif store.read_generation(channel, gen.number) != strip_timestamp(ref):
                    findings.append(Finding("ref", f"refs/{channel}", f"differs from generation {gen.number}'s record"))
            except StoreError as exc:
                findings.append(Finding("ref", f"refs/{channel}", exc.message))
    for host in store.overlay_hosts():
        overlay = store.read_overlay(host)
        if overlay is None:
            continue
        data = overlay
        where = layout.overlay_path(host)
        try:
            ov = Overlay.from_record(open_record(data, where), where)
        except StoreError as exc:
            findings.append(Finding(_kind(exc), where, exc.message))
            continue
        if ov.host != host or ov.store_id != store.store_id:
            findings.append(Finding("record", where, f"record is for host {ov.host!r} of store {ov.store_id}"))
        if ov.sealed is not None:  # fsck holds no host key: the boxes are checked by their own ids
            findings.extend(Finding("missing", o, f"sealed object of {where} is missing")
                            for o in ov.sealed.all_objects() if o not in objects)
        elif ov.manifest is not None:
            manifests.setdefault(ov.manifest, layout.overlay_path(host))
    for m, where in sorted(manifests.items()):
        if m not in objects:
            findings.append(Finding("missing", m, f"manifest of {where} is missing"))
            continue
        try:
            with store.open_manifest(m) as entries:
                for e in entries:
                    if e.oid is not None and e.oid not in objects:
                        findings.append(Finding("missing", e.oid, f"content of {e.path!r} in {where} is missing"))
        except StoreError as exc:
            findings.append(Finding("record", m, f"manifest of {where}: {exc.message}"))
    return CheckResult(tuple(findings), len(objects), generations)


class _Discard:
    """A write-only sink: fsck needs the hash of an object, not its bytes."""

    def write(self, data: bytes) -> int:
        return len(data)


def _set_aside(store: Store, oid: ObjectId) -> None:
    """--repair: keep the damaged bytes under corrupt/ and remove the object, so the next
    snapshot that has the content uploads it again."""
    path = layout.object_path(oid)
    try:
        store.backend.write(f"corrupt/{oid}", store.backend.read(path))
        store.backend.delete(path)
    except StoreError:
        pass
