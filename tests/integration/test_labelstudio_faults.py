"""Faults against the real Label Studio: imports whose answer was lost, a server killed and
restarted in the middle of a task import, an annotation fetch and a prediction push, a proxy
answering 502/503, and a request limit. Each call completes with no duplicate and no gap."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psutil
import pytest
from support import CONFIG, project_tasks

from annotation_loop.dev.services import LabelStudioServer
from annotation_loop.errors import LabelStudioHTTPError, LabelStudioUnreachable
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.settings import Settings
from annotation_loop.task_types.choices import result_for_label

pytestmark = pytest.mark.integration


class AnswerLost(httpx.HTTPTransport):
    """The real server handles every request, but the answers of the POSTs to a path ending
    in `suffix` number `lost` (counted from 1) are dropped, as a reset connection would."""

    def __init__(self, suffix: str, lost: set[int]) -> None:
        super().__init__()
        self.suffix, self.lost, self.seen = suffix, lost, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path.rstrip("/").endswith(self.suffix):
            self.seen += 1
            if self.seen in self.lost:
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


def flaky_client(settings: Settings, suffix: str, lost: set[int]) -> LabelStudioClient:
    return LabelStudioClient(
        settings.label_studio_url,
        settings.label_studio_api_key.get_secret_value(),
        transport=AnswerLost(suffix, lost),
    )


def task_datas(count: int, start: int = 0) -> list[dict]:
    return [
        {"image": f"/x/{i}.png", "content_hash": f"md5:{i:032x}"}
        for i in range(start, start + count)
    ]


def test_a_task_chunk_whose_answer_was_lost_is_resumed(services, client, project):
    flaky = flaky_client(services, "/import", lost={2})
    ids = flaky.import_tasks(project, task_datas(25), chunk_size=10)

    tasks = {t["id"]: t["data"]["content_hash"] for t in project_tasks(services, project)}
    assert len(tasks) == 25, "the lost chunk was neither duplicated nor dropped"
    assert [tasks[i] for i in ids] == [d["content_hash"] for d in task_datas(25)]


def test_a_prediction_chunk_whose_answer_was_lost_is_resumed(services, client, project):
    ids = client.import_tasks(project, task_datas(25))
    flaky = flaky_client(services, "/import/predictions", lost={1})
    predictions = [PredictionIn(i, result_for_label("cat", "image"), 0.5, "m:1") for i in ids]
    assert flaky.import_predictions(project, predictions, chunk_size=10) == 25
    counts = [len(t["predictions"]) for t in project_tasks(services, project)]
    assert counts == [1] * 25


class Unreachable(httpx.HTTPTransport):
    """Every POST to a path ending in `suffix` fails before it reaches the server."""

    def __init__(self, suffix: str) -> None:
        super().__init__()
        self.suffix = suffix

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.rstrip("/").endswith(self.suffix):
            raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


def test_an_import_that_keeps_failing_stops_with_one_line(services, project):
    down = LabelStudioClient(
        services.label_studio_url,
        services.label_studio_api_key.get_secret_value(),
        transport=Unreachable("/import"),
    )
    with pytest.raises(LabelStudioUnreachable) as exc:
        down.import_tasks(project, task_datas(5))
    assert "\n" not in str(exc.value) and services.label_studio_url in str(exc.value)
    assert project_tasks(services, project) == []


# -- a private Label Studio, killed and restarted ----------------------------------------
# Its request limit (DATA_UPLOAD_MAX_MEMORY_SIZE, 250 MiB by default) is small enough to
# exceed in a test; predictions commit in batches this small, so a kill can split a request.
REQUEST_LIMIT = 1024 * 1024
PREDICTION_BATCH = 20


class PrivateLabelStudio(LabelStudioServer):
    """The fault tests' own Label Studio: `crash` kills it as an OOM kill or a power cut
    would (SIGKILL, nothing finishes) and starts it again in the background, as a
    supervisor would; requests meanwhile find nothing listening."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.crashes = 0
        self.restarting: threading.Thread | None = None

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            "DATA_UPLOAD_MAX_MEMORY_SIZE": str(REQUEST_LIMIT),
            "PREDICTION_IMPORT_BATCH_SIZE": str(PREDICTION_BATCH),
        }

    def crash(self, down_for: float = 0.0) -> None:
        """Kills the server and starts it again `down_for` seconds later, in the background."""
        pid = self.status().pid
        assert pid is not None, "the private Label Studio is not running"
        os.killpg(pid, signal.SIGKILL)
        psutil.Process(pid).wait(30)
        self.crashes += 1

        def restart() -> None:
            time.sleep(down_for)
            self.start()

        self.restarting = threading.Thread(target=restart, daemon=True)
        self.restarting.start()

    def settle(self) -> None:
        """Waits for the restart of the last crash, if any."""
        if self.restarting is not None:
            self.restarting.join(240)
            self.restarting = None
        assert self.status().healthy


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLabelStudio]:
    """One private server for the module: a fresh one takes 20-60 s, a restart 5-10 s."""
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("faults"),
        label_studio_url=f"http://127.0.0.1:{free_port()}",
    )
    server = PrivateLabelStudio(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop(grace=2)  # its data is the test's: no need to let it finish anything


@pytest.fixture
def private_project(
    private: PrivateLabelStudio, unique_name: str
) -> Iterator[tuple[LabelStudioClient, int]]:
    private.settle()
    client = private_client(private)
    project_id = client.get_or_create_project(unique_name, CONFIG)
    yield client, project_id
    private.settle()
    client.delete_project(project_id)


def private_client(
    server: PrivateLabelStudio, transport: httpx.BaseTransport | None = None
) -> LabelStudioClient:
    settings = server.settings
    return LabelStudioClient(
        settings.label_studio_url,
        settings.label_studio_api_key.get_secret_value(),
        transport=transport,
    )


class CrashAt(httpx.HTTPTransport):
    """Crashes the server at the `nth` request (from 1) that `matches`: `before` it is
    sent (nothing listens when it arrives), or `after` the server answered it (the answer
    is lost with the server)."""

    def __init__(
        self,
        server: PrivateLabelStudio,
        matches: Callable[[httpx.Request], bool],
        nth: int,
        when: str,
        down_for: float = 0.0,
    ) -> None:
        super().__init__()
        self.server, self.matches, self.nth, self.when = server, matches, nth, when
        self.down_for = down_for
        self.seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.matches(request):
            self.seen += 1
        hit = self.matches(request) and self.seen == self.nth
        if hit and self.when == "before":
            self.server.crash(self.down_for)
        response = super().handle_request(request)
        if hit and self.when == "after":
            response.read()
            response.close()
            self.server.crash(self.down_for)
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return response


def posts_to(suffix: str) -> Callable[[httpx.Request], bool]:
    return lambda r: r.method == "POST" and r.url.path.rstrip("/").endswith(suffix)


def task_pages(request: httpx.Request) -> bool:
    return request.method == "GET" and request.url.path.rstrip("/") == "/api/tasks"


def by_content_hash(settings: Settings, project_id: int) -> dict[str, list[int]]:
    tasks: dict[str, list[int]] = {}
    for task in project_tasks(settings, project_id):
        tasks.setdefault(task["data"]["content_hash"], []).append(task["id"])
    return tasks


@pytest.mark.parametrize("when", ["after", "before"])
def test_a_task_import_survives_a_crash_of_label_studio(private, private_project, when):
    """`after`: the server committed a chunk and died before answering; `before`: it died
    before the next chunk arrived. Either way every task exists once, ids in order."""
    _, project_id = private_project
    crashing = private_client(private, CrashAt(private, posts_to("/import"), 2, when))
    crashes = private.crashes
    ids = crashing.import_tasks(project_id, task_datas(30), chunk_size=10)

    assert private.crashes == crashes + 1
    tasks = by_content_hash(private.settings, project_id)
    assert len(tasks) == 30 and all(len(found) == 1 for found in tasks.values())
    assert ids == [tasks[d["content_hash"]][0] for d in task_datas(30)]


def test_an_annotation_fetch_survives_a_crash_of_label_studio(private, private_project):
    client, project_id = private_project
    ids = client.import_tasks(project_id, task_datas(12))
    for task_id in ids:
        client.create_annotation(task_id, result_for_label("dog", "image"))
    # Page 2 of 3 was answered, then the server died, and stayed down a while (a slow
    # restart on a busy machine): the page is asked for again once it is back.
    crash = CrashAt(private, task_pages, 2, "after", down_for=10)
    crashing = private_client(private, crash)
    crashes = private.crashes
    fetched = [t.id for t in crashing.iter_tasks_updated_since(project_id, None, page_size=5)]
    assert private.crashes == crashes + 1
    assert fetched == ids, "every annotated task once, oldest change first"


class CrashMidImport(httpx.HTTPTransport):
    """Crashes the server while it imports predictions, once some of the request's batches
    are committed and others not (read from its SQLite database as it writes)."""

    def __init__(self, server: PrivateLabelStudio, project_id: int, expected: int) -> None:
        super().__init__()
        self.server, self.project_id, self.expected = server, project_id, expected
        self.committed_before_crash: int | None = None

    def watch(self, done: threading.Event) -> None:
        database = self.server.data_dir / "label_studio.sqlite3"
        query = "SELECT COUNT(*) FROM prediction WHERE project_id = ?"
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1)) as db:
            while not done.is_set():
                try:
                    (count,) = db.execute(query, (self.project_id,)).fetchone()
                except sqlite3.OperationalError:  # locked by the writer for a moment
                    continue
                if 0 < count < self.expected:
                    self.committed_before_crash = count
                    self.server.crash()
                    return
                time.sleep(0.002)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.committed_before_crash is not None or not posts_to("/import/predictions")(request):
            return super().handle_request(request)
        done = threading.Event()
        watcher = threading.Thread(target=self.watch, args=(done,), daemon=True)
        watcher.start()
        try:
            return super().handle_request(request)
        finally:
            done.set()
            watcher.join()


def predictions_per_task(settings: Settings, project_id: int) -> list[int]:
    return [len(t["predictions"]) for t in project_tasks(settings, project_id)]


def test_a_prediction_push_survives_a_crash_of_label_studio(private, private_project):
    client, project_id = private_project
    ids = client.import_tasks(project_id, task_datas(600))
    predictions = [PredictionIn(i, result_for_label("cat", "image"), 0.5, "m:1") for i in ids]

    # Killed with part of a request committed: the rest is sent, nothing twice.
    mid = CrashMidImport(private, project_id, len(ids))
    assert private_client(private, mid).import_predictions(project_id, predictions) == 600
    assert mid.committed_before_crash is not None, "the crash did split the request"
    assert predictions_per_task(private.settings, project_id) == [1] * 600

    # Killed after committing a whole chunk, before answering.
    private.settle()
    second = [PredictionIn(p.task_id, p.result, 0.7, "m:2") for p in predictions[:30]]
    after = CrashAt(private, posts_to("/import/predictions"), 2, "after")
    assert private_client(private, after).import_predictions(project_id, second, 10) == 30
    counts = predictions_per_task(private.settings, project_id)
    assert counts == [2] * 30 + [1] * 570
    assert client.task_ids_with_prediction(project_id, "m:2") == set(ids[:30])


# -- a proxy in front of Label Studio, answering 502/503 ----------------------------------
class GatewayProxy(ThreadingHTTPServer):
    """A loopback reverse proxy, as nginx in front of Label Studio: it forwards every
    request, except that the requests `fails` matches get its status instead, after the
    request reached the server (`forwarded`, a 502 after the upstream dropped the
    connection) or without it (a 503 while the upstream restarts)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = httpx.Client(base_url=upstream, timeout=60)
        self.faults: list[tuple[Callable[[httpx.Request], bool], int, bool]] = []
        self.answered: list[int] = []  # the statuses of the faults it answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fail(self, matches: Callable[[httpx.Request], bool], status: int, forwarded: bool) -> None:
        self.faults.append((matches, status, forwarded))


class _ProxyHandler(BaseHTTPRequestHandler):
    server: GatewayProxy

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = self.server.upstream.build_request(
            self.command,
            self.path,
            content=self.rfile.read(length),
            headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
        )
        fault = next((f for f in self.server.faults if f[0](request)), None)
        if fault is not None:
            self.server.faults.remove(fault)
            _, status, forwarded = fault
            if forwarded:
                self.server.upstream.send(request).read()
            self.server.answered.append(status)
            self._answer(status, b"<html>Bad Gateway</html>", "text/html")
            return
        response = self.server.upstream.send(request)
        self._answer(response.status_code, response.read(), response.headers["content-type"])

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _proxy

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the client's retries say what happened."""


@pytest.fixture
def proxy(private: PrivateLabelStudio) -> Iterator[GatewayProxy]:
    server = GatewayProxy(private.url)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def is_whoami(request: httpx.Request) -> bool:
    return request.url.path.endswith("/whoami")


def test_502_and_503_from_a_proxy_are_retried_without_duplicates(private, private_project, proxy):
    client, project_id = private_project
    token = private.settings.label_studio_api_key.get_secret_value()
    behind = LabelStudioClient(proxy.url, token)

    # Task import: a chunk is imported but its answer is the proxy's 502 (in doubt), and
    # the server is "restarting" (503) twice while the client checks it is back.
    proxy.fail(posts_to("/import"), 502, forwarded=True)
    proxy.fail(is_whoami, 503, forwarded=False)
    proxy.fail(is_whoami, 503, forwarded=False)
    ids = behind.import_tasks(project_id, task_datas(30), chunk_size=10)
    tasks = by_content_hash(private.settings, project_id)
    assert len(tasks) == 30 and all(len(found) == 1 for found in tasks.values())
    assert ids == [tasks[d["content_hash"]][0] for d in task_datas(30)]

    # Annotation fetch: pages answered 502 and 503 are asked for again.
    for task_id in ids:
        client.create_annotation(task_id, result_for_label("cat", "image"))
    proxy.fail(task_pages, 502, forwarded=True)
    proxy.fail(task_pages, 503, forwarded=False)
    assert [t.id for t in behind.iter_tasks_updated_since(project_id, None, page_size=7)] == ids

    # Prediction push: one chunk refused (503), one imported behind a 502.
    proxy.fail(posts_to("/import/predictions"), 503, forwarded=False)
    proxy.fail(posts_to("/import/predictions"), 502, forwarded=True)
    predictions = [PredictionIn(i, result_for_label("dog", "image"), 0.4, "m:1") for i in ids]
    assert behind.import_predictions(project_id, predictions, chunk_size=10) == 30
    assert predictions_per_task(private.settings, project_id) == [1] * 30
    assert proxy.answered == [502, 503, 503, 502, 503, 503, 502] and proxy.faults == []


# -- requests sized by bytes ------------------------------------------------------------
class Counting(httpx.HTTPTransport):
    """Records the body size of every POST."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.posted.append(len(request.content))
        return super().handle_request(request)


def test_long_texts_are_imported_in_requests_within_the_servers_limit(private, private_project):
    client, project_id = private_project
    texts = [
        {"image": f"/x/{i}.png", "content_hash": f"md5:{i}", "text": f"{i} " + "w" * 50_000}
        for i in range(60)
    ]  # ~3 MB in all, three times the server's limit
    with pytest.raises(LabelStudioHTTPError) as refused:  # one request, as by count alone
        client.import_tasks(project_id, texts, max_bytes=10 * REQUEST_LIMIT)
    assert (refused.value.status, refused.value.method) == (500, "POST")
    assert project_tasks(private.settings, project_id) == []

    budget = REQUEST_LIMIT // 2
    counting = Counting()
    ids = private_client(private, counting).import_tasks(project_id, texts, max_bytes=budget)
    assert len(counting.posted) >= 6 and max(counting.posted) <= budget
    assert sum(counting.posted) > 2 * REQUEST_LIMIT
    tasks = by_content_hash(private.settings, project_id)
    assert len(tasks) == 60 and ids == [tasks[t["content_hash"]][0] for t in texts]

    # Predictions are cut the same way.
    region = {**result_for_label("cat", "image")[0], "meta": {"text": ["n" * 20_000]}}
    predictions = [PredictionIn(i, [region], 0.5, "m:1") for i in ids]
    counting.posted.clear()
    pushed = private_client(private, counting).import_predictions(
        project_id, predictions, max_bytes=budget
    )
    assert pushed == 60 and len(counting.posted) >= 3 and max(counting.posted) <= budget
    assert predictions_per_task(private.settings, project_id) == [1] * 60
