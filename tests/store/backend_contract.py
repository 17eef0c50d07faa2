"""The backend contract: what every store URL scheme must do, run against real servers.

Each scheme's test module is one line, naming the scheme; its `<scheme>_target` fixture
(tests/servers.py) gives every test an empty prefix on a real server:

    class TestS3Backend(BackendContract, NetworkContract):
        scheme = "s3"

    BackendReadContract   reads, stat, streams, and the client's read path through Store
    BackendContract       + atomic writes, exclusive create (the writer lock), list, delete,
                          concurrent transfers through Store
    ReadOnlyContract      (http) every write and every listing is refused clearly
    NetworkContract       refused connection -> StoreUnreachable after retries, a silent server
                          -> StoreUnreachable (timeout), wrong credentials -> StoreAccessDenied

A subclass lists its known gaps in `gaps` (test name -> reason); tests/servers.py marks them
xfail(strict=True), so a fixed gap shows up as a failure to clean up, and nothing is skipped.

Read tests write their data through `writer` (the same URL, or the file:// folder an http
server serves) and read it through `backend`, a separate instance: nothing is answered from
a cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regen.store import (
    Backend,
    Entry,
    Generation,
    LockHeld,
    NotFound,
    ObjectCorrupt,
    ObjectMissing,
    SecretKey,
    Store,
    StoreAccessDenied,
    StoreExists,
    StoreLock,
    StoreReadOnly,
    StoreUnreachable,
    build_manifest,
    layout,
    object_id,
    open_backend,
    trust_map,
    utcnow,
    verify_generation,
)
from regen.store.generation import format_time
from tests.servers import Target

RETRIES = 2


def _open(url: str, options: dict[str, Any], **kw: Any) -> Backend:
    kw.setdefault("retries", RETRIES)
    kw.setdefault("backoff", 0.01)
    return open_backend(url, options, **kw)


def _publish(store: Store, key: SecretKey, files: dict[str, bytes], number: int = 1) -> bytes:
    """Upload `files` as a one-folder tree and publish it as generation `number` of channel stable.

        etc/            (dir)
        etc/<name>      (file) for each name in `files`
    """
    entries = [Entry("etc", "dir", 0o755)]
    for name, data in files.items():
        entries.append(Entry(f"etc/{name}", "file", 0o644, len(data), store.put(data), "0" * 32))
    manifest, moid, stats = build_manifest(entries)
    store.put(manifest)
    gen = Generation(store.store_id, "stable", number, moid, format_time(utcnow()), None if number == 1 else number - 1)
    env = store.write_generation(gen, [key])
    store.set_ref("stable", env)
    return env


class BackendReadContract:
    """Reads: every scheme, including read-only http."""

    scheme: str
    gaps: dict[str, str] = {}  # test name -> why this backend is known to fail it (marked xfail, strict)

    @pytest.fixture
    def target(self, request: pytest.FixtureRequest) -> Target:
        return request.getfixturevalue(f"{self.scheme}_target")  # type: ignore[no-any-return]

    @pytest.fixture
    def url(self, target: Target) -> str:
        return target.url

    @pytest.fixture
    def backend(self, target: Target) -> Iterator[Backend]:
        b = _open(target.url, target.options)
        yield b
        b.close()

    @pytest.fixture
    def writer(self, target: Target) -> Iterator[Backend]:
        b = _open(target.write_url, target.write_options)
        yield b
        b.close()

    # -- backend level ---------------------------------------------------------------------------
    def test_read_returns_exactly_what_was_written(self, writer: Backend, backend: Backend) -> None:
        data = bytes(range(256)) * 40
        writer.write("a/b/c.bin", data)
        assert backend.read("a/b/c.bin") == data
        assert backend.read("a/b/c.bin", max_bytes=10) == data[:11]  # one more than asked: "too big"

    def test_read_missing_raises_not_found(self, writer: Backend, backend: Backend) -> None:
        writer.write("a/present", b"x")
        for path in ("a/absent", "nowhere/at/all", "a/present/below"):
            with pytest.raises(NotFound):
                backend.read(path)
            with pytest.raises(NotFound):
                backend.read(path, max_bytes=100)
        assert backend.counters.retries == 0  # "missing" is an answer, not a failure to retry

    def test_empty_file_reads_as_empty(self, writer: Backend, backend: Backend) -> None:
        writer.write("empty", b"")
        assert backend.read("empty") == b""
        assert backend.read("empty", max_bytes=10) == b""
        with backend.open_read("empty") as fp:
            assert fp.read() == b""
        assert backend.stat("empty").size == 0

    def test_open_read_streams_in_pieces(self, writer: Backend, backend: Backend) -> None:
        data = bytes(range(251)) * 2000  # ~500 KB: several reads of a stream
        writer.write("big", data)
        got = bytearray()
        with backend.open_read("big") as fp:
            while chunk := fp.read(65536):
                got += chunk
        assert bytes(got) == data
        with pytest.raises(NotFound):
            with backend.open_read("not-there"):
                pass

    def test_read_range_reads_exactly_the_part(self, target: Target, writer: Backend, backend: Backend) -> None:
        data = bytes(range(256)) * 400  # 100 KB: a pack file's worth of blobs
        writer.write("packs/ab/pack", data)
        mark = target.log.mark() if target.log else 0
        assert backend.read_range("packs/ab/pack", 0, 10) == data[:10]
        assert backend.read_range("packs/ab/pack", 1000, 50_000) == data[1000:51_000]
        assert backend.read_range("packs/ab/pack", len(data) - 7, 100) == data[-7:]  # short only at the end
        assert backend.counters.reads == 3 and backend.counters.bytes_read == 10 + 50_000 + 7
        with pytest.raises(NotFound):
            backend.read_range("packs/ab/absent", 0, 10)
        if target.log is not None:  # as the server saw it: one GET per range, nothing else
            assert [m for m, _ in target.requests(mark)] == ["GET"] * 4

    def test_client_reads_packed_objects_by_ranges(self, target: Target, tmp_path: Path) -> None:
        pub = Store.init(target.write_url, target.write_options, packed=True, pack_size=1 << 16)
        blobs = [bytes([i]) * (500 + 300 * i) + bytes(range(256)) for i in range(40)]  # ~250 KB in ~4 packs
        with pub.packing(1 << 16), pub.staged() as batch:
            for data in blobs:
                pub.put_bytes_staged(batch, data)
        client = Store.open(target.url, target.options, config=pub.config, retries=RETRIES, backoff=0.01)
        mark = target.log.mark() if target.log else 0
        ids = [object_id(b) for b in blobs]
        result = client.fetch_many(ids, lambda oid: str(tmp_path / oid))
        assert not result.errors and sorted(result.done) == sorted(ids)
        assert all((tmp_path / object_id(b)).read_bytes() == b for b in blobs)
        # the index list, one index, one ranged read per pack: not one request per object
        assert client.counters.reads <= 8 and client.counters.lists == client.counters.stats == 0
        assert client.get(ids[7]) == blobs[7]
        if target.log is not None:
            assert {m for m, _ in target.requests(mark)} == {"GET"}

    def test_stat_gives_size_and_mtime(self, target: Target, writer: Backend, backend: Backend) -> None:
        writer.write("d/f", b"12345")
        st = backend.stat("d/f")
        assert st.size == 5
        if not target.read_only:  # gc's grace period needs mtimes on every writable store
            assert st.mtime is not None and st.mtime > 1.6e9
        with pytest.raises(NotFound):
            backend.stat("d/missing")

    def test_stat_of_a_folder_is_not_found(self, writer: Backend, backend: Backend) -> None:
        writer.write("d/f", b"12345")
        with pytest.raises(NotFound):
            backend.stat("d")  # a folder is not a file

    # -- the client's path through Store ----------------------------------------------------------
    def test_client_reads_ref_record_manifest_objects(self, target: Target, signing_key: SecretKey,
                                                      tmp_path: Path) -> None:
        pub = Store.init(target.write_url, target.write_options)
        files = {"a": b"alpha" * 100, "b": b"beta" * 1000, "c": b""}
        env = _publish(pub, signing_key, files)
        client = Store.open(target.url, target.options, retries=RETRIES, backoff=0.01)
        mark = target.log.mark() if target.log else 0
        assert client.store_id == pub.store_id
        ref = client.read_ref("stable")
        assert ref == env
        gen = verify_generation(ref, trust_map([signing_key.public]), store_id=pub.store_id, channel="stable")
        entries = client.read_manifest(gen.manifest)
        oids = [e.oid for e in entries if e.oid]
        result = client.fetch_many(oids, lambda oid: str(tmp_path / oid))
        assert not result.errors and sorted(result.done) == sorted(set(oids))
        for name, data in files.items():
            assert (tmp_path / object_id(data)).read_bytes() == data
        assert client.read_ref("other-channel") is None
        assert client.read_overlay("some-host") is None
        assert client.counters.lists == 0  # the read path never lists...
        if target.log is not None:  # ...and, as the server saw it, only GETs files: no HEAD, no LIST
            sent = target.requests(mark)
            assert sent and all(m == "GET" and "list-type" not in p and not p.endswith("/") for m, p in sent), sent

    def test_nothing_to_do_reads_one_small_ref(self, target: Target, signing_key: SecretKey) -> None:
        pub = Store.init(target.write_url, target.write_options)
        _publish(pub, signing_key, {"a": b"a"})
        client = Store.open(target.url, target.options, config=pub.config)  # the client caches the config
        mark = target.log.mark() if target.log else 0
        assert client.read_ref("stable") is not None
        assert client.counters.as_dict()["reads"] == 1
        assert client.counters.lists == client.counters.stats == client.counters.retries == 0
        if target.log is not None:  # counted by the server itself
            [(method, path)] = target.requests(mark)
            assert method == "GET" and path.endswith(f"/{target.prefix}/refs/stable")

    def test_object_get_is_one_request(self, target: Target) -> None:
        pub = Store.init(target.write_url, target.write_options)
        oid = pub.put(b"some content" * 1000)
        client = Store.open(target.url, target.options, config=pub.config)
        mark = target.log.mark() if target.log else 0
        assert client.get(oid) == b"some content" * 1000
        assert client.counters.reads == 1 and client.counters.stats == 0
        if target.log is not None:
            assert [m for m, _ in target.requests(mark)] == ["GET"]

    def test_missing_object_and_corrupt_object(self, target: Target, tmp_path: Path) -> None:
        pub = Store.init(target.write_url, target.write_options)
        good = [pub.put(f"object {i}".encode()) for i in range(5)]
        bad = pub.put(b"will be damaged")
        pub.backend.write(layout.object_path(bad), b"r" + b"not what the id says")
        absent = object_id(b"never stored")
        client = Store.open(target.url, target.options, config=pub.config, retries=RETRIES, backoff=0.01)
        with pytest.raises(ObjectMissing):
            client.get(absent)
        with pytest.raises(ObjectCorrupt):
            client.get(bad)
        result = client.fetch_many([*good, bad, absent], lambda oid: str(tmp_path / oid))
        assert sorted(result.done) == sorted(good)  # the rest of the run goes on
        assert isinstance(result.errors[bad], ObjectCorrupt)
        assert isinstance(result.errors[absent], ObjectMissing)
        assert not (tmp_path / bad).exists() and not (tmp_path / absent).exists()
        assert client.missing([*good, absent]) == {absent}


class BackendContract(BackendReadContract):
    """Everything a writable store must do (file, memory, s3, smb, sftp)."""

    def test_write_replaces_atomically_and_leaves_no_temp_files(self, backend: Backend) -> None:
        backend.write("refs/stable", b"first")
        backend.write("refs/stable", b"second, longer")
        assert backend.read("refs/stable") == b"second, longer"
        assert backend.list("refs") == ["refs/stable"]

    def test_readers_never_see_a_partial_file(self, backend: Backend, target: Target) -> None:
        other = _open(target.url, target.options)
        a, b = b"A" * 300_000, b"B" * 200_000
        backend.write("x", a)
        seen: set[bytes] = set()
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                seen.add(other.read("x"))
                stop.wait(0.005)  # a busy client, not a hammer (SMB writers wait for a gap between reads)

        t = threading.Thread(target=reader)
        t.start()
        try:
            for i in range(6):
                backend.write("x", b if i % 2 == 0 else a)
        finally:
            stop.set()
            t.join(30)
            other.close()
        assert seen <= {a, b}

    def test_replace_while_being_read(self, target: Target) -> None:
        """A client still reading an old ref never blocks the publisher (SMB share modes)."""
        other = _open(target.url, target.options)
        publisher = _open(target.url, target.options, sleep=lambda s: None)  # no waiting for a gap
        publisher.write("refs/stable", b"old" * 1000)
        try:
            with other.open_read("refs/stable") as fp:
                first = fp.read(3)
                publisher.write("refs/stable", b"new" * 1000)
                assert other.read("refs/stable") == b"new" * 1000
            assert first == b"old"
        finally:
            other.close()
            publisher.close()

    def test_create_exclusive_never_overwrites(self, backend: Backend) -> None:
        backend.create_exclusive("locks/writer.json", b"mine")
        with pytest.raises(StoreExists):
            backend.create_exclusive("locks/writer.json", b"theirs")
        assert backend.read("locks/writer.json") == b"mine"
        assert backend.list("locks") == ["locks/writer.json"]  # the loser left no temp file

    def test_create_exclusive_has_one_winner(self, backend: Backend, target: Target) -> None:
        """Four writers race for the lock: exactly one gets it, and its content is complete."""
        backends = [_open(target.url, target.options) for _ in range(4)]
        outcome: dict[int, str] = {}
        start = threading.Barrier(4)

        def race(i: int) -> None:
            start.wait()
            try:
                backends[i].create_exclusive("locks/writer.json", f"writer {i}".encode() * 100)
                outcome[i] = "won"
            except StoreExists:
                outcome[i] = "lost"

        threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for b in backends:
            b.close()
        winners = [i for i, o in outcome.items() if o == "won"]
        assert len(outcome) == 4 and len(winners) == 1
        assert backend.read("locks/writer.json") == f"writer {winners[0]}".encode() * 100

    def test_list_gives_root_relative_paths(self, backend: Backend) -> None:
        for p in ("objects/ab/cdef", "objects/ab/0123", "objects/ff/9876", "refs/stable", "regen.json"):
            backend.write(p, p.encode())
        assert backend.list("objects") == ["objects/ab/0123", "objects/ab/cdef", "objects/ff/9876"]
        assert backend.list("objects/ab") == ["objects/ab/0123", "objects/ab/cdef"]
        assert backend.list("nothing-here") == []
        assert backend.list("obj") == []  # a prefix is a folder, not a string prefix
        assert backend.list_dirs("objects") == ["ab", "ff"]
        assert backend.list_dirs("nothing-here") == []
        assert backend.list_dirs("refs") == []

    def test_list_on_an_empty_store(self, backend: Backend) -> None:
        assert backend.list("") == []
        assert backend.list_dirs("") == []

    def test_delete(self, backend: Backend) -> None:
        backend.write("reports/h/1.json", b"{}")
        backend.delete("reports/h/1.json")
        with pytest.raises(NotFound):
            backend.read("reports/h/1.json")
        assert backend.list("reports") == []
        try:
            backend.delete("reports/h/1.json")  # S3 cannot tell; others say NotFound
        except NotFound:
            pass

    def test_write_from_stream(self, backend: Backend, tmp_path: Path) -> None:
        src = tmp_path / "src"
        src.write_bytes(bytes(range(256)) * 9000)  # 2.3 MB: several copy chunks
        with open(src, "rb") as fp:
            fp.read(100)  # write_from rewinds: a retry must not send a tail
            backend.write_from("objects/aa/big", fp)
        assert backend.read("objects/aa/big") == src.read_bytes()
        assert backend.counters.bytes_written == src.stat().st_size

    # -- through Store ----------------------------------------------------------------------------
    def test_init_and_open(self, url: str, target: Target) -> None:
        store = Store.init(url, target.options)
        with pytest.raises(StoreExists):
            Store.init(url, target.options)
        assert Store.open(url, target.options).store_id == store.store_id

    def test_put_many_fetch_many_concurrently(self, url: str, target: Target, tmp_path: Path) -> None:
        Store.init(url, target.options)
        store = Store.open(url, target.options, concurrency=8)
        src = tmp_path / "src"
        src.mkdir()
        items = []
        for i in range(24):
            p = src / f"f{i}"
            p.write_bytes(f"file {i} ".encode() * (i * 50 + 1))
            items.append((object_id(p.read_bytes()), str(p)))
        first = store.put_many(items)
        assert not first.errors and len(first.done) == 24
        again = store.put_many(items)
        assert not again.errors and len(again.skipped) == 24 and not again.done
        assert store.missing([oid for oid, _ in items]) == set()
        out = tmp_path / "out"
        out.mkdir()
        got = store.fetch_many([oid for oid, _ in items], lambda oid: str(out / oid))
        assert not got.errors and len(got.done) == 24
        for oid, p in items:
            assert (out / oid).read_bytes() == Path(p).read_bytes()
        assert sorted(store.list_objects()) == sorted(oid for oid, _ in items)

    def test_writer_lock(self, url: str, target: Target) -> None:
        store = Store.init(url, target.options)
        with StoreLock(store, "alice"):
            with pytest.raises(LockHeld, match="alice"):
                StoreLock(Store.open(url, target.options), "bob").acquire()
        with StoreLock(Store.open(url, target.options), "bob"):
            pass

    def test_generations_and_reports(self, url: str, target: Target, signing_key: SecretKey) -> None:
        store = Store.init(url, target.options)
        _publish(store, signing_key, {"a": b"1"})
        _publish(store, signing_key, {"a": b"2"}, number=2)
        assert store.generation_numbers("stable") == [1, 2]
        assert store.channels() == ["stable"]
        with pytest.raises(StoreExists):
            _publish(store, signing_key, {"a": b"3"}, number=2)


class ReadOnlyContract:
    """A read-only store (http) refuses every write and every listing with StoreReadOnly."""

    def test_writes_are_refused_clearly(self, backend: Backend, tmp_path: Path) -> None:
        src = tmp_path / "f"
        src.write_bytes(b"x")
        with open(src, "rb") as fp:
            attempts = [
                lambda: backend.write("refs/stable", b"x"),
                lambda: backend.create_exclusive("locks/writer.json", b"x"),
                lambda: backend.delete("regen.json"),
                lambda: backend.write_from("objects/aa/bb", fp),
                lambda: backend.list("objects"),
                lambda: backend.list_dirs("reports"),
            ]
            for attempt in attempts:
                with pytest.raises(StoreReadOnly) as exc:
                    attempt()
                assert "read-only" in exc.value.one_line()
        assert backend.counters.writes == backend.counters.lists == 0  # refused before any request

    def test_store_init_is_refused(self, url: str) -> None:
        with pytest.raises(StoreReadOnly):
            Store.init(url)


class NetworkContract:
    """Failures of the network and of credentials become the right errors, and never hang."""

    def test_refused_connection_is_unreachable_after_retries(self, target: Target) -> None:
        url, options = target.unreachable()
        sleeps: list[float] = []
        b = _open(url, options, sleep=sleeps.append)
        with pytest.raises(StoreUnreachable):
            b.read("refs/stable")  # never a false "missing"
        assert b.counters.retries == RETRIES and len(sleeps) == RETRIES
        assert sleeps[1] > sleeps[0] * 0.5  # exponential backoff (with jitter)
        with pytest.raises(StoreUnreachable):
            Store.open(url, options, retries=0).read_ref("stable")

    def test_silent_server_times_out(self, target: Target, tarpit: int) -> None:
        assert target.at_port is not None
        url, options = target.at_port(tarpit)
        b = _open(url, {**options, "timeout": 0.5}, retries=0)
        outcome: list[BaseException] = []

        def attempt() -> None:
            try:
                b.read("refs/stable")
            except BaseException as exc:  # noqa: BLE001 - inspected below
                outcome.append(exc)

        t = threading.Thread(target=attempt, daemon=True)
        t.start()
        t.join(60)  # a liveness guard, not a timing assertion: the client must give up by itself
        assert not t.is_alive(), "the client hung on a silent server"
        assert outcome and isinstance(outcome[0], StoreUnreachable), outcome

    def test_bad_credentials_are_access_denied(self, target: Target) -> None:
        assert target.bad_credentials is not None
        url, options = target.bad_credentials
        b = _open(url, options)
        with pytest.raises(StoreAccessDenied):
            b.read("regen.json")
        assert b.counters.retries == 0  # a refusal is not retried
