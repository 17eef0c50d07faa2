"""A client says what is wrong with its store (issue 17): unreachable, misconfigured or damaged,
each with its state in the report and in `regend status`, its one line with the fix, and its
exit status -- end to end, with real `regend` runs against a real HTTP server that answers
401/404/500 or dies mid-update, and moto's S3 with a wrong secret."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from regen.store import Store, layout
from regen.store.errors import EXIT_DAMAGED, EXIT_FAILED, EXIT_MISCONFIGURED, EXIT_UNREACHABLE
from tests.servers import S3Server

from .conftest import Client, expected, publish

GEN1 = {"etc/app.conf": "v1\n", "bin/tool": "tool\n"}


class FaultyStore:
    """http.server over a store folder: `status` answers every URL path starting with one of its
    prefixes with that HTTP status; after `die_after` object GETs the server goes away."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.status: dict[str, int] = {}
        self.die_after: int | None = None
        self.object_gets: list[str] = []
        self.agents: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, directory=str(outer.root), **kw)

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.agents.add(self.headers.get("User-Agent", ""))
                rel = self.path.split("?", 1)[0].lstrip("/")
                for prefix, status in outer.status.items():
                    if rel.startswith(prefix):
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if rel.startswith("objects/"):
                    with outer._lock:
                        outer.object_gets.append(rel)
                        dying = outer.die_after is not None and len(outer.object_gets) > outer.die_after
                    if dying:
                        threading.Thread(target=outer.stop, daemon=True).start()
                        self.close_connection = True
                        return
                super().do_GET()

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture
def faulty(file_store: Store) -> Iterator[FaultyStore]:
    server = FaultyStore(Path(file_store.backend.root))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_client(make_client: Callable[..., Client], faulty: FaultyStore, file_store: Store, signing_key: Any) -> Client:
    """A client of the HTTP store, with generation 1 installed (and its cache filled again by the
    next run: the install moved the objects into the tree, refill.py)."""
    publish(file_store, signing_key, GEN1, number=1)
    c = make_client(faulty.url, storage_options={"timeout": 2})
    c.regend("run", "--once")
    c.regend("run", "--once")
    return c


def test_requests_carry_regens_user_agent(web_client: Client, faulty: FaultyStore) -> None:
    from regen.store.about import version

    assert faulty.agents == {f"regen/{version()}"}  # not aiohttp's Python/3.x default


def _status(c: Client) -> dict[str, Any]:
    last: dict[str, Any] = json.loads(c.regend("status", "--json").stdout)["last_run"]
    return last


def test_401_is_a_misconfiguration_not_an_outage(web_client: Client, faulty: FaultyStore) -> None:
    faulty.status = {"": 401}
    (web_client.root / "etc/app.conf").write_text("drift\n")
    out = web_client.regend("run", "--once", exit_code=EXIT_MISCONFIGURED)
    assert "store misconfigured: " in out.stderr and "HTTP 401" in out.stderr
    assert "fix the store URL, credentials" in out.stderr
    assert "could not confirm" not in out.stderr
    assert out.stdout.startswith("repaired (store misconfigured):")
    assert web_client.tree() == expected(GEN1)  # repaired from the local copies all the same
    last = _status(web_client)
    assert last["store_state"] == "misconfigured" and last["exit_code"] == EXIT_MISCONFIGURED
    text = web_client.regend("status").stdout
    assert "store: misconfigured: store misconfigured: " in text and "HTTP 401" in text


def test_a_url_without_a_store_is_a_misconfiguration(make_client: Callable[..., Client], web_client: Client,
                                                     faulty: FaultyStore) -> None:
    web_client.store_url = faulty.url + "/no-store-here"
    web_client.write_config()
    out = web_client.regend("run", "--once", exit_code=EXIT_MISCONFIGURED)
    assert "store misconfigured: no regen store at" in out.stderr


def test_a_missing_ref_on_an_installed_client_is_a_misconfiguration(web_client: Client, faulty: FaultyStore,
                                                                   file_store: Store) -> None:
    (Path(file_store.backend.root) / layout.ref_path("stable")).unlink()
    out = web_client.regend("run", "--once", exit_code=EXIT_MISCONFIGURED)
    assert "channel 'stable' has no ref" in out.stdout and "check 'channel' in regend.toml" in out.stdout
    assert _status(web_client)["store_state"] == "misconfigured"


def test_an_unknown_channel_on_a_new_client_fails_as_a_misconfiguration(make_client: Callable[..., Client],
                                                                       faulty: FaultyStore, file_store: Store,
                                                                       signing_key: Any) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    c = make_client(faulty.url)
    c.config_path.write_text(c.config_path.read_text().replace('channel = "stable"', 'channel = "stabel"'))
    out = c.regend("run", "--once", exit_code=EXIT_FAILED)  # nothing installed: the machine cannot start
    assert "channel 'stabel' has no published generation" in out.stdout
    assert _status(c)["store_state"] == "misconfigured"


def test_500_on_objects_is_unreachable_and_the_ref_was_read(web_client: Client, faulty: FaultyStore,
                                                            file_store: Store, signing_key: Any) -> None:
    publish(file_store, signing_key, {**GEN1, "etc/new.conf": "new\n"}, number=2)
    from regen.store import object_id

    faulty.status = {layout.object_path(object_id(b"new\n")): 500}  # (the manifest is served)
    out = web_client.regend("run", "--once", exit_code=EXIT_UNREACHABLE)
    assert "could not confirm the newest generation" not in out.stderr  # the ref was read
    assert "objects could not be fetched: unreachable" in out.stdout and "HTTP 500" in out.stdout
    assert web_client.tree() == expected(GEN1)
    assert _status(web_client)["store_state"] == "unreachable"
    faulty.status = {}
    web_client.regend("run", "--once")  # the outage is over: exit 0 again
    assert _status(web_client)["store_state"] == "ok"


def test_an_object_not_matching_its_id_is_a_damaged_store(web_client: Client, file_store: Store,
                                                          signing_key: Any) -> None:
    publish(file_store, signing_key, {**GEN1, "etc/new.conf": "brand new\n"}, number=2)
    from regen.store import object_id

    oid = object_id(b"brand new\n")
    (Path(file_store.backend.root) / layout.object_path(oid)).write_bytes(b"rgarbage")
    out = web_client.regend("run", "--once", exit_code=EXIT_DAMAGED)
    assert "damaged 1 (first: " in out.stdout
    assert "regen fsck --repair" in out.stderr
    assert web_client.tree() == expected(GEN1)  # the installed generation stays
    assert _status(web_client)["store_state"] == "damaged"


def test_server_dying_mid_update_gives_up_quietly_and_the_next_run_resumes(
        web_client: Client, faulty: FaultyStore, file_store: Store, signing_key: Any) -> None:
    many = {f"data/f{i:03}": f"content {i}\n" for i in range(150)}
    publish(file_store, signing_key, {**GEN1, **many}, number=2)
    faulty.object_gets.clear()
    faulty.die_after = 20
    t0 = time.monotonic()
    out = web_client.regend("run", "--once", exit_code=EXIT_UNREACHABLE)
    print(f"server died after 20 of 150 objects: the run gave up after {time.monotonic() - t0:.1f} s, "
          f"{len(out.stderr.encode())} bytes on stderr")
    assert len(out.stderr.encode()) < 4096, out.stderr  # not one line per object and retry
    assert len(out.stderr.splitlines()) <= 6, out.stderr
    assert "objects could not be fetched: unreachable" in out.stdout
    fetched = set(faulty.object_gets[:20])
    faulty.die_after = None
    faulty.start()
    faulty.object_gets.clear()
    web_client.regend("run", "--once")
    assert web_client.tree() == expected({**GEN1, **many})
    assert not fetched & set(faulty.object_gets), "the next run fetched again what it already had"


def test_s3_with_a_wrong_secret_is_a_misconfiguration(make_client: Callable[..., Client], s3_server: S3Server,
                                                      signing_key: Any) -> None:
    import uuid

    url = f"s3://regen-test/{uuid.uuid4().hex[:8]}"
    store = Store.init(url, s3_server.options())
    publish(store, signing_key, GEN1, number=1)
    c = make_client(url)
    opts = s3_server.options(secret="not-the-secret")
    with open(c.config_path, "a") as fp:
        fp.write("[storage_options]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in opts.items()
                                                 if not isinstance(v, dict)))
        fp.write('client_kwargs = { region_name = "us-east-1" }\n')
    out = c.regend("run", "--once", exit_code=EXIT_FAILED)  # nothing installed: cannot start
    assert "denied" in out.stdout, out
    assert _status(c)["store_state"] == "misconfigured"


def test_a_bad_storage_option_is_a_misconfiguration(web_client: Client) -> None:
    web_client.write_config(storage_options={"timeout": 2, "proxi": "http://proxy:3128"})
    out = web_client.regend("run", "--once", exit_code=EXIT_MISCONFIGURED)
    assert "store misconfigured: storage option 'proxi' for http:// stores is unknown" in out.stderr
    assert "did you mean proxy?" in out.stderr and "Traceback" not in out.stderr
