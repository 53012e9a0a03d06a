"""The Label Studio client the pipelines use: bulk, paged, server-side-filtered REST calls.

Plain httpx rather than `label_studio_sdk`: every call here is one request to a documented
endpoint, the bulk reads need exact control of the Data Manager query (keyset paging,
`include=`, `resolve_uri=false`) and no pydantic model per task, and one error mapping
(`LabelStudioClient._request`) serves them all, retries included.

Measured on Label Studio 1.23.2 (SQLite, 2 cores): tasks import ~3,500/s; task listing
~0.3 ms per task whatever the page size (the server's per-task prefetches dominate).
Predictions import ~1,600/s only with the server flag
`fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short=true`: without it
every request recounts all the project's tasks (5k tasks: ~700/s in chunks of 2,000;
50k tasks: ~100-300/s), so large chunks pay.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from tqdm import tqdm

from annotation_loop.data.uris import is_loopback_url
from annotation_loop.errors import LabelStudioAuthError, LabelStudioUnreachable, LoopError

logger = logging.getLogger(__name__)
# httpx logs every request at INFO, which ZenML's step logs would show: thousands of lines
# per sync. Our own log lines say what was done.
logging.getLogger("httpx").setLevel(logging.WARNING)

T = TypeVar("T")
R = TypeVar("R")
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
# After an import chunk failed in doubt, and between the pages of a bulk read: how long to
# wait for Label Studio to answer again (a restart takes 5-10 s, longer on a busy machine),
# so that a restart costs a long import or fetch nothing.
RECOVERY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
CHUNK_ATTEMPTS = 3
# The JSON body of one import request (tasks or predictions), at most. Label Studio 1.23
# refuses a body over its DATA_UPLOAD_MAX_MEMORY_SIZE (250 MiB unless set; the answer is an
# HTTP 500 "You cannot access body after reading from request's data stream"), its Docker
# image's nginx allows 200 MB, and the server holds the parsed body, several times its size,
# in memory. 16 MiB keeps well below all of them while 50k image tasks (~7 MB) still go in
# one request.
IMPORT_MAX_BYTES = 16 * 1024 * 1024
# How far before the watermark an annotation fetch starts. Label Studio stamps a task's
# `updated_at` when a change is saved but the change is seen only once its transaction
# commits: a change stamped just before a fetch's newest task and committed after that
# fetch would fall behind the watermark. A bulk action (e.g. annotations from predictions
# over a whole project) holds its transaction for minutes; the tasks re-read in this window
# cost little and merge as unchanged.
LATE_COMMIT_OVERLAP = timedelta(minutes=10)
UNCERTAINTY_SAMPLING = "Uncertainty sampling"  # the labelling stream: lowest prediction score first
# Failures after which the server may have acted on the request: only requests that are
# safe to repeat are retried on them.
ANSWERED_FAILURES = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
)
# Failures where the request never reached the server: every request is retried on them.
UNANSWERED_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# What a proxy in front of Label Studio answers while the server is down, restarting or slow:
# the server may or may not have acted on the request, so a create is in doubt.
GATEWAY_STATUSES = frozenset({502, 503, 504})
# Data Manager datetime filters parse exactly this format (naive, UTC).
DM_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Data Manager truncates its text columns (e.g. predictions_model_versions) to this length.
DM_TEXT_LIMIT = 500
# Task ids per Data Manager query when restricting to given tasks (keeps the URL ~8 KB).
SELECTED_IDS_PER_QUERY = 1000
TASK_INDEX_PAGE_SIZE = 5000
# Label Studio checks a new storage's bucket before it answers; for an unreachable Azure
# account the Azure SDK's retries alone take ~85 s.
STORAGE_CHECK_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class TaskRef:
    """A task as the sync sees it: which object it shows."""

    id: int
    content_hash: str
    uri: str
    batch: str


@dataclass(frozen=True)
class PredictionIn:
    """A prediction to push as a pre-annotation."""

    task_id: int
    result: list[dict[str, Any]]
    score: float
    model_version: str


@dataclass(frozen=True)
class LabelledTask:
    """A task as the annotation fetch sees it: full annotation and prediction dicts."""

    id: int
    data: dict[str, Any]
    annotations: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    updated_at: datetime


class _TokenAuth(httpx.Auth):
    """A legacy token goes as `Token <key>`; a personal access token (a JWT refresh token)
    is exchanged at /api/token/refresh/ for a short-lived access token sent as `Bearer`,
    exchanged again when the server answers 401."""

    requires_response_body = True

    def __init__(self, api_key: str, refresh_url: str) -> None:
        self._api_key = api_key
        self._refresh_url = refresh_url
        self._is_jwt = api_key.count(".") == 2
        self._access: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._is_jwt:
            request.headers["Authorization"] = f"Token {self._api_key}"
            yield request
            return
        if self._access is None:
            yield from self._refresh()
        request.headers["Authorization"] = f"Bearer {self._access}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh()
            request.headers["Authorization"] = f"Bearer {self._access}"
            yield request

    def _refresh(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self._refresh_url, json={"refresh": self._api_key})
        # A refused token leaves a stale access token: the retried request then gets the 401.
        if response.status_code == 200:
            self._access = response.json()["access"]


class LabelStudioClient:
    """What the loop needs from Label Studio, in as few requests as the API allows."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,  # e.g. a proxy-aware or test transport
    ) -> None:
        self.url = url.rstrip("/")
        auth = _TokenAuth(api_key, refresh_url=f"{self.url}/api/token/refresh/")
        self._http = httpx.Client(
            base_url=self.url, auth=auth, timeout=timeout, transport=transport
        )

    # -- plumbing ------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        json_content: bytes | None = None,
        repeatable: bool,
        missing_ok: bool = False,
        retry_delays: Sequence[float] = RETRY_DELAYS_S,
        timeout: float | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body (None when empty, or on 404 with
        `missing_ok`). The body is `json_body`, or `json_content`: JSON already encoded.

        `repeatable`: the call may be repeated after the server got it (reads, updates,
        deletes); it is retried on dropped connections, timeouts and 5xx. Other calls
        (creates, imports) are retried only when the request never reached the server, so a
        retry cannot create anything twice; when it may have (a dropped answer, a proxy's
        502/503/504) they raise `LabelStudioUnreachable` at once, for the caller to check
        what was created. `timeout` replaces the client's own.
        """
        delays = list(retry_delays)
        headers = {"Content-Type": "application/json"} if json_content is not None else None
        while True:
            try:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    json=json_body,
                    content=json_content,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
                )
            except UNANSWERED_FAILURES as exc:
                failure = f"{type(exc).__name__}: {exc}"
            except ANSWERED_FAILURES as exc:
                failure = f"{type(exc).__name__} during {method} {path}: {exc}"
                if not repeatable:
                    raise self._unreachable(f"{failure}; not retried") from None
            else:
                status = response.status_code
                if missing_ok and status == 404:
                    return None
                gateway = status in GATEWAY_STATUSES
                if gateway and not repeatable:
                    raise self._unreachable(f"HTTP {status} during {method} {path}; not retried")
                # Past its retries, a server error is reported with its detail; a proxy's
                # answer means the server itself is not reachable.
                if not (repeatable and status in RETRY_STATUSES and (delays or gateway)):
                    return self._decode(method, path, response)
                failure = f"HTTP {status}"
            if not delays:
                raise self._unreachable(failure)
            delay = delays.pop(0)
            logger.warning(
                "Label Studio %s %s failed (%s): retrying in %.1fs", method, path, failure, delay
            )
            time.sleep(delay)

    def _unreachable(self, reason: str) -> LabelStudioUnreachable:
        return LabelStudioUnreachable(
            f"Label Studio is not reachable at {self.url} ({_one_line(reason)}): start it "
            "with `python run.py up` or set LOOP_LABEL_STUDIO_URL"
        )

    def _decode(self, method: str, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 401:
            raise LabelStudioAuthError(
                f"Label Studio at {self.url} rejected the API key: set "
                "LOOP_LABEL_STUDIO_API_KEY to a legacy token or personal access token from "
                "Account & Settings"
            )
        if status == 403:
            raise LabelStudioAuthError(
                f"Label Studio at {self.url} refused {method} {path} "
                f"(403: {_error_detail(response)[:200]}): set LOOP_LABEL_STUDIO_API_KEY to "
                "the token of a user who may do this in the project's organization"
            )
        if status >= 400:
            raise LoopError(
                f"Label Studio {method} {path} failed with HTTP {status}: "
                f"{_error_detail(response)[:200]}"
            )
        return response.json() if response.content else None

    def _task_page(
        self,
        project_id: int,
        *,
        filters: dict[str, Any] | None,
        ordering: str,
        page_size: int,
        include: str | None = None,
        selected: Sequence[int] | None = None,
        page: int = 1,
    ) -> dict[str, Any]:
        """One page of the Data Manager task list (`/api/tasks`), URIs left unresolved:
        `tasks`, and the `total` count matching the filters."""
        query: dict[str, Any] = {"ordering": [ordering]}
        if filters:
            query["filters"] = filters
        if selected is not None:
            query["selectedItems"] = {"all": False, "included": list(selected)}
        params: dict[str, Any] = {
            "project": project_id,
            "page": page,
            "page_size": page_size,
            "resolve_uri": "false",
            "query": json.dumps(query),
        }
        if include is None:
            params["fields"] = "all"  # annotations and predictions too
        else:
            params["include"] = include
        # A page past the end is a 404.
        body = self._request(
            "GET",
            "/api/tasks/",
            params=params,
            repeatable=True,
            missing_ok=page > 1,
            retry_delays=RECOVERY_DELAYS_S,
        )
        return body if body is not None else {"tasks": []}

    def _tasks_by_id(
        self,
        project_id: int,
        *,
        include: str,
        filters: list[dict[str, Any]],
        selected: Sequence[int] | None = None,
        page_size: int = TASK_INDEX_PAGE_SIZE,
        after_id: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """All tasks above `after_id` matching `filters` (AND), keyset-paged by id so that
        concurrent imports neither shift nor repeat pages."""
        last_id = after_id
        while True:
            items = [
                *filters,
                _id_filter("greater", last_id),
            ]
            tasks = self._task_page(
                project_id,
                filters={"conjunction": "and", "items": items},
                ordering="tasks:id",
                page_size=page_size,
                include=include,
                selected=selected,
            )["tasks"]
            yield from tasks
            if len(tasks) < page_size:
                return
            last_id = tasks[-1]["id"]

    # -- public API ----------------------------------------------------------------------
    def check(self) -> None:
        """Raises `LabelStudioUnreachable` or `LabelStudioAuthError` unless the API answers
        (at once: this is the check before a run, not a call worth waiting for)."""
        self._request("GET", "/api/current-user/whoami", repeatable=True, retry_delays=())

    def get_or_create_project(self, title: str, label_config: str) -> int:
        """The id of the project titled exactly `title`, created if absent; its label
        config is updated when it differs (Label Studio refuses configs that cannot show
        the existing annotations)."""
        page = 1
        while True:
            body = self._request(
                "GET",
                "/api/projects/",
                params={
                    "title": title,  # a case-insensitive substring filter
                    "include": "id,title,label_config",
                    "ordering": "id",
                    "page": page,
                    "page_size": 100,
                },
                repeatable=True,
            )
            for project in body["results"]:
                if project["title"] == title:
                    if project["label_config"] != label_config:
                        self._update_label_config(project["id"], title, label_config)
                    return int(project["id"])
            if not body.get("next"):
                break
            page += 1
        created = self._request(
            "POST",
            "/api/projects/",
            json_body={"title": title, "label_config": label_config},
            repeatable=False,
        )
        return int(created["id"])

    def _update_label_config(self, project_id: int, title: str, label_config: str) -> None:
        try:
            self._request(
                "PATCH",
                f"/api/projects/{project_id}/",
                json_body={"label_config": label_config},
                repeatable=True,
            )
        except (LabelStudioAuthError, LabelStudioUnreachable):
            raise
        except LoopError as exc:
            raise LoopError(
                f"Label Studio refused the new label config of project {title!r} "
                f"({self.project_url(project_id)}): {exc}. Keep the labels its annotations "
                "use, or pick another project name"
            ) from None
        logger.info("Updated the label config of project %r", title)

    def project_url(self, project_id: int) -> str:
        return f"{self.url}/projects/{project_id}/data"

    def connect_s3_source(
        self,
        project_id: int,
        *,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        region: str,
        presign: bool = True,
    ) -> int:
        """An S3 import storage on `bucket`/`prefix` (reused when there is one), so Label
        Studio resolves the tasks' s3:// URIs for annotators. Never synced: the loop creates
        the tasks itself.

        Label Studio refuses to connect unless at least one object exists under the prefix.
        A loopback `endpoint_url` is not sent: Label Studio's SSRF guard refuses it, and
        trusts its own `S3_ENDPOINT` environment variable instead (set by `run.py up`).
        """
        prefix = prefix.strip("/")
        existing = self._request(
            "GET", "/api/storages/s3/", params={"project": project_id}, repeatable=True
        )
        for storage in existing:
            if storage["bucket"] == bucket and (storage.get("prefix") or "").strip("/") == prefix:
                return int(storage["id"])
        body: dict[str, Any] = {
            "project": project_id,
            "title": f"s3://{bucket}/{prefix}",
            "bucket": bucket,
            "prefix": f"{prefix}/" if prefix else "",
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "region_name": region,
            "presign": presign,
            "use_blob_urls": False,
        }
        if endpoint_url and not is_loopback_url(endpoint_url):
            body["s3_endpoint"] = endpoint_url
        created = self._request("POST", "/api/storages/s3/", json_body=body, repeatable=False)
        return int(created["id"])

    def connect_local_source(self, project_id: int, path: Path) -> int:
        """A local-files storage on `path` (reused when there is one); `path` must exist
        and lie under the server's LOCAL_FILES_DOCUMENT_ROOT."""
        path_text = str(path.resolve())
        existing = self._request(
            "GET", "/api/storages/localfiles/", params={"project": project_id}, repeatable=True
        )
        for storage in existing:
            if storage["path"].rstrip("/") == path_text:
                return int(storage["id"])
        created = self._request(
            "POST",
            "/api/storages/localfiles/",
            json_body={
                "project": project_id,
                "title": path.name,
                "path": path_text,
                "use_blob_urls": True,
            },
            repeatable=False,
        )
        return int(created["id"])

    def connect_gcs_source(
        self,
        project_id: int,
        *,
        bucket: str,
        prefix: str,
        credentials_json: str | None,
        presign: bool = True,
    ) -> int:
        """A GCS import storage on `bucket`/`prefix` (reused when there is one), so Label
        Studio resolves the tasks' gs:// URIs for annotators. Never synced.

        `credentials_json` is a service-account key (the file's text); without it Label
        Studio uses its own application default credentials, or none when its
        STORAGE_EMULATOR_HOST names an emulator (with a key it would fetch a token from Google
        even for the emulator). Presigning needs a service-account key:
        with `presign=False` Label Studio serves the bytes itself, from its
        RESOLVER_PROXY_GCS_DOWNLOAD_URL (storage.googleapis.com unless set).
        """
        prefix = prefix.strip("/")
        existing = self._find_storage("gcs", project_id, "bucket", bucket, prefix)
        if existing is not None:
            return existing
        uri = f"gs://{bucket}/{prefix}"
        return self._create_storage(
            "gcs",
            {
                "project": project_id,
                "title": uri,
                "bucket": bucket,
                "prefix": f"{prefix}/" if prefix else "",
                "google_application_credentials": credentials_json,
                "presign": presign,
                "use_blob_urls": False,
            },
            failure=(
                f"Label Studio could not connect {uri}: it must reach Google Cloud Storage (or "
                "the emulator its STORAGE_EMULATOR_HOST names) with these credentials and find "
                "at least one object under the prefix"
            ),
        )

    def connect_azure_source(
        self,
        project_id: int,
        *,
        container: str,
        prefix: str,
        account_name: str,
        account_key: str,
        presign: bool = True,
        blob_endpoint: str | None = None,
    ) -> int:
        """An Azure Blob import storage on `container`/`prefix` (reused when there is one), so
        Label Studio resolves the tasks' azure-blob:// URIs for annotators. Never synced.

        Label Studio checks the container at https://<account>.blob.core.windows.net before
        it creates the storage. It builds its connection string by appending the key, so a
        `BlobEndpoint` added to the key points it elsewhere (Azurite): that is what
        `blob_endpoint` does. Presigned URLs always name the public endpoint, so use
        `presign=False` (Label Studio serves the bytes) with `blob_endpoint`.
        """
        prefix = prefix.strip("/")
        existing = self._find_storage("azure", project_id, "container", container, prefix)
        if existing is not None:
            return existing
        endpoint = blob_endpoint or f"https://{account_name}.blob.core.windows.net"
        if blob_endpoint:
            account_key = f"{account_key};BlobEndpoint={blob_endpoint}"
        return self._create_storage(
            "azure",
            {
                "project": project_id,
                "title": f"azure-blob://{container}/{prefix}",
                "container": container,
                "prefix": f"{prefix}/" if prefix else "",
                "account_name": account_name,
                "account_key": account_key,
                "presign": presign,
                "use_blob_urls": False,
            },
            failure=(
                f"Label Studio could not connect Azure container {container!r} (prefix "
                f"{prefix!r}): it must reach Azure Blob Storage at {endpoint} with this account "
                "name and key and find at least one object under the prefix"
            ),
        )

    def _find_storage(
        self, kind: str, project_id: int, location_field: str, location: str, prefix: str
    ) -> int | None:
        """The id of the project's `kind` import storage on `location` and `prefix`."""
        existing = self._request(
            "GET", f"/api/storages/{kind}/", params={"project": project_id}, repeatable=True
        )
        for storage in existing:
            if (
                storage[location_field] == location
                and (storage.get("prefix") or "").strip("/") == prefix
            ):
                return int(storage["id"])
        return None

    def _create_storage(self, kind: str, body: dict[str, Any], failure: str) -> int:
        """Creates an import storage; Label Studio refuses one whose bucket it cannot list:
        that refusal is raised as `failure`, its reason appended."""
        try:
            created = self._request(
                "POST",
                f"/api/storages/{kind}/",
                json_body=body,
                repeatable=False,
                timeout=STORAGE_CHECK_TIMEOUT_S,
            )
        except (LabelStudioAuthError, LabelStudioUnreachable):
            raise
        except LoopError as exc:
            raise LoopError(f"{failure} ({exc})") from None
        return int(created["id"])

    def connect_ml_backend(
        self, project_id: int, url: str, title: str, basic_auth: tuple[str, str] | None
    ) -> int:
        """Connects the ML backend at `url` to the project, titled `title`, with `basic_auth`
        (user, password; None: none); an existing connection to the same URL is kept and
        updated. Label Studio calls its /health and /setup first, with those credentials, and
        refuses a backend that fails them.

        Title it with the served model version: a project's `model_version` may only name a
        connected backend's title or a version that has predictions."""
        body: dict[str, Any] = {"project": project_id, "url": url, "title": title}
        if basic_auth is None:
            # Label Studio sends basic auth whenever it has a user and a password, whatever
            # the method; an empty password would fail its check on a new backend.
            body.update(auth_method="NONE", basic_auth_user="")
        else:
            user, password = basic_auth
            body.update(auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=password)
        existing = self._ml_backend_at(project_id, url)
        try:
            if existing is not None:
                # Label Studio 1.23 checks the backend again on every update, and fails (500)
                # unless the update names the project and URL.
                self._request("PATCH", f"/api/ml/{existing}", json_body=body, repeatable=True)
                return existing
            created = self._request("POST", "/api/ml", json_body=body, repeatable=False)
            return int(created["id"])
        except LabelStudioUnreachable:
            raise
        except LoopError as exc:  # 403 included: that is also how SSRF protection refuses
            # Label Studio 1.23 saves a new backend, then answers 403 when its SSRF protection
            # refuses the webhook it makes for it: the backend is connected all the same.
            connected = None if existing is not None else self._ml_backend_at(project_id, url)
            if connected is not None:
                return connected
            raise LoopError(
                f"Label Studio refused the ML backend at {url} ({exc}): serve it on an address "
                "Label Studio may reach (--host, --url) and check that the project's label "
                "config fits the model (the backend's log says)"
            ) from None

    def _ml_backend_at(self, project_id: int, url: str) -> int | None:
        backends = self._request("GET", "/api/ml", params={"project": project_id}, repeatable=True)
        return next(
            (int(b["id"]) for b in backends if b["url"].rstrip("/") == url.rstrip("/")), None
        )

    def ensure_webhook(self, project_id: int, url: str, headers: dict[str, str]) -> int:
        """The project's webhook to `url`, sending every event with its payload and `headers`:
        created, or updated if one goes there. Raises LoopError if Label Studio refuses it
        (its SSRF protection refuses loopback and private addresses)."""
        body = {
            "project": project_id,
            "url": url,
            "headers": headers,
            "send_payload": True,
            "send_for_all_actions": True,
            "is_active": True,
        }
        hooks = self._request(
            "GET", "/api/webhooks/", params={"project": project_id}, repeatable=True
        )
        for hook in hooks:
            if hook["url"] == url and hook.get("project") == project_id:
                self._request(
                    "PATCH", f"/api/webhooks/{hook['id']}/", json_body=body, repeatable=True
                )
                return int(hook["id"])
        created = self._request("POST", "/api/webhooks/", json_body=body, repeatable=False)
        return int(created["id"])

    def annotation_count(self, project_id: int) -> int:
        """The project's annotations that label something (skipped tasks' excluded)."""
        project = self._request("GET", f"/api/projects/{project_id}/", repeatable=True)
        return int(project["total_annotations_number"]) - int(project["skipped_annotations_number"])

    def use_predictions_of(self, project_id: int, model_version: str | None) -> None:
        """Annotators see `model_version`'s predictions (None: keep the project's choice), and
        tasks opened without one are sent to the connected ML backend; the labelling stream
        asks for the lowest prediction score first (Label Studio's uncertainty sampling)."""
        settings: dict[str, Any] = {
            "show_collab_predictions": True,
            "sampling": UNCERTAINTY_SAMPLING,
        }
        if model_version is not None:
            settings["model_version"] = model_version
        self._request("PATCH", f"/api/projects/{project_id}/", json_body=settings, repeatable=True)

    def save_view(
        self,
        project_id: int,
        title: str,
        filters: list[dict[str, Any]],
        ordering: Sequence[str] = (),
    ) -> int:
        """A Data Manager tab of the project: created, or updated if one has this title."""
        data = {
            "title": title,
            "filters": {"conjunction": "and", "items": filters},
            "ordering": list(ordering),
        }
        for view in self._request(
            "GET", "/api/dm/views/", params={"project": project_id}, repeatable=True
        ):
            if view["data"].get("title") == title:
                self._request(
                    "PATCH",
                    f"/api/dm/views/{view['id']}/",
                    json_body={"project": project_id, "data": data},
                    repeatable=True,
                )
                return int(view["id"])
        created = self._request(
            "POST",
            "/api/dm/views/",
            json_body={"project": project_id, "data": data},
            repeatable=False,
        )
        return int(created["id"])

    def iter_task_refs(self, project_id: int, after_id: int = 0) -> Iterator[TaskRef]:
        """Every task with an id above `after_id`, oldest first (`content_hash` is "" for
        tasks the loop did not create)."""
        for task in self._tasks_by_id(project_id, include="id,data", filters=[], after_id=after_id):
            data = task["data"]
            content_hash = data.get("content_hash")
            yield TaskRef(
                id=int(task["id"]),
                # A task imported by hand may carry anything there; only the loop's own count.
                content_hash=content_hash if isinstance(content_hash, str) else "",
                uri=str(data.get("uri", "")),
                batch=str(data.get("batch", "")),
            )

    def task_index(self, project_id: int) -> dict[str, TaskRef]:
        """Every task that has a `content_hash`, keyed by it (the lowest id wins)."""
        index: dict[str, TaskRef] = {}
        for ref in self.iter_task_refs(project_id):
            if ref.content_hash:
                index.setdefault(ref.content_hash, ref)
        return index

    def count_tasks_up_to(self, project_id: int, task_id: int) -> int:
        """How many of the project's tasks have an id up to `task_id` (one request)."""
        page = self._task_page(
            project_id,
            filters={"conjunction": "and", "items": [_id_filter("less_or_equal", task_id)]},
            ordering="tasks:id",
            page_size=1,
            include="id",
        )
        return int(page["total"])

    def import_tasks(
        self,
        project_id: int,
        tasks: Sequence[dict[str, Any]],
        chunk_size: int = 5000,
        max_bytes: int = IMPORT_MAX_BYTES,
    ) -> list[int]:
        """Creates one task per data dict, in bulk (requests of at most `chunk_size` tasks
        and `max_bytes` of JSON); returns their ids in order.

        Each dict carries a `content_hash`: after a chunk failed in doubt (the connection
        dropped once the server had it), the tasks that made it are found by it and only
        the rest are sent again.
        """

        def already_created(chunk: Sequence[dict[str, Any]]) -> dict[int, int]:
            index = self.task_index(project_id)
            return {
                position: index[data["content_hash"]].id
                for position, data in enumerate(chunk)
                if data.get("content_hash") in index
            }

        return self._in_chunks(
            tasks,
            _Chunking("tasks", len(tasks), chunk_size, max_bytes),
            lambda data: {"data": data},
            lambda _, body: self._request(
                "POST",
                f"/api/projects/{project_id}/import",
                params={"return_task_ids": "true"},
                json_content=body,
                repeatable=False,
            )["task_ids"],
            already_created,
        )

    def import_predictions(
        self,
        project_id: int,
        predictions: Iterable[PredictionIn],
        chunk_size: int = 5000,
        total: int | None = None,
        max_bytes: int = IMPORT_MAX_BYTES,
    ) -> int:
        """Pushes predictions in bulk, a chunk at a time as `predictions` yields them (at most
        `chunk_size` and `max_bytes` of JSON per request; `total`: how many, for the progress
        bar); returns how many Label Studio created.

        After a chunk failed in doubt, the tasks that now hold their prediction's model
        version are left out of the resend, so no task gets the same prediction twice.
        """

        def send(chunk: Sequence[PredictionIn], body: bytes) -> list[bool]:
            created = self._request(
                "POST",
                f"/api/projects/{project_id}/import/predictions",
                json_content=body,
                repeatable=False,
            )["created"]
            return [position < created for position in range(len(chunk))]

        def already_created(chunk: Sequence[PredictionIn]) -> dict[int, bool]:
            holding = {
                version: self.task_ids_with_prediction(
                    project_id, version, [p.task_id for p in chunk if p.model_version == version]
                )
                for version in {p.model_version for p in chunk}
            }
            return {
                position: True
                for position, p in enumerate(chunk)
                if p.task_id in holding[p.model_version]
            }

        def encode(p: PredictionIn) -> dict[str, Any]:
            return {
                "task": p.task_id,
                "result": p.result,
                "score": p.score,
                "model_version": p.model_version,
            }

        if total is None and isinstance(predictions, Sized):
            total = len(predictions)
        chunking = _Chunking("predictions", total, chunk_size, max_bytes)
        return sum(self._in_chunks(predictions, chunking, encode, send, already_created))

    def _in_chunks(
        self,
        items: Iterable[T],
        chunking: _Chunking,
        encode: Callable[[T], Any],
        send: Callable[[Sequence[T], bytes], list[R]],
        already_created: Callable[[Sequence[T]], dict[int, R]],
    ) -> list[R]:
        """`send`s the items in chunks, taken from `items` as they go; one result per item,
        in order. `send` gets a chunk and its request body: the JSON array of the items'
        `encode`d forms.

        A chunk that failed in doubt is resumed once Label Studio answers again:
        `already_created(chunk)` maps the positions of the items that made it to their
        results, and only the others are sent again.
        """
        results: list[R] = []
        with tqdm(
            total=chunking.total,
            unit=chunking.unit,
            desc=f"Label Studio: import {chunking.unit}",
            disable=chunking.total is not None and chunking.total <= chunking.max_items,
        ) as progress:
            for chunk in json_chunks(items, encode, chunking.max_items, chunking.max_bytes):
                results.extend(self._send_resumably(chunk, chunking.unit, send, already_created))
                progress.update(len(chunk))
        return results

    def _send_resumably(
        self,
        chunk: Sequence[tuple[T, bytes]],
        unit: str,
        send: Callable[[Sequence[T], bytes], list[R]],
        already_created: Callable[[Sequence[T]], dict[int, R]],
    ) -> list[R]:
        done: dict[int, R] = {}
        items = [item for item, _ in chunk]
        pending = list(range(len(chunk)))
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                body = json_array(chunk[i][1] for i in pending)
                done.update(zip(pending, send([items[i] for i in pending], body), strict=True))
                break
            except LabelStudioUnreachable:
                if attempt == CHUNK_ATTEMPTS:
                    raise
                logger.warning(
                    "An import of %d %s failed in doubt: resuming it once Label Studio answers",
                    len(pending),
                    unit,
                )
                self._request(
                    "GET",
                    "/api/current-user/whoami",
                    repeatable=True,
                    retry_delays=RECOVERY_DELAYS_S,
                )
                made_it = already_created([items[i] for i in pending])
                done.update((pending[position], result) for position, result in made_it.items())
                pending = [i for position, i in enumerate(pending) if position not in made_it]
                if not pending:
                    break
        return [done[i] for i in range(len(chunk))]

    def iter_tasks_updated_since(
        self,
        project_id: int,
        since: datetime | None,
        page_size: int = 1000,
        overlap: timedelta = LATE_COMMIT_OVERLAP,
    ) -> Iterator[LabelledTask]:
        """Tasks changed after `since` minus `overlap` (all annotated tasks when `since` is
        None), oldest change first. The overlap catches changes committed late (see
        LATE_COMMIT_OVERLAP); the tasks it re-reads are the caller's to de-duplicate.

        Annotation creates, updates, skips and deletes bump a task's `updated_at`;
        prediction imports do not. A task annotated before is returned when it has lost its
        annotations; a task created after `since` only once it has an annotation. Pages are
        keyed by `updated_at`, so a task changed during the fetch comes again at the end
        rather than being skipped: the newest `updated_at` seen is a safe next `since`.
        """
        since = _utc(since) if since is not None else None
        start = since - overlap if since is not None else None
        cursor = start
        seen_at_cursor: set[int] = set()
        page = 1
        while True:
            tasks = self._task_page(
                project_id,
                filters=_changed_filters(cursor, since),
                ordering="tasks:updated_at",
                page_size=page_size,
                page=page,
            )["tasks"]
            for task in tasks:
                updated_at = _parse_time(task["updated_at"])
                if task["id"] in seen_at_cursor or (start is not None and updated_at <= start):
                    continue
                yield LabelledTask(
                    id=int(task["id"]),
                    data=task["data"],
                    annotations=task.get("annotations") or [],
                    predictions=task.get("predictions") or [],
                    updated_at=updated_at,
                )
            if len(tasks) < page_size:
                return
            newest = _parse_time(tasks[-1]["updated_at"])
            at_newest = {t["id"] for t in tasks if _parse_time(t["updated_at"]) == newest}
            if newest == cursor:
                # A whole page changed at one instant (a bulk action): step through it.
                page += 1
                seen_at_cursor |= at_newest
            else:
                cursor, seen_at_cursor, page = newest, at_newest, 1

    def task_ids_with_prediction(
        self, project_id: int, model_version: str, task_ids: Collection[int] | None = None
    ) -> set[int]:
        """The tasks (of `task_ids`, or all) holding a prediction of `model_version`."""
        # The Data Manager filter is a substring match: check the versions exactly here.
        version_filter = {
            "filter": "filter:tasks:predictions_model_versions",
            "operator": "contains",
            "type": "List",
            "value": [model_version],
        }
        selections: list[Sequence[int] | None] = [None]
        if task_ids is not None:
            ids = sorted(task_ids)
            selections = [
                ids[i : i + SELECTED_IDS_PER_QUERY]
                for i in range(0, len(ids), SELECTED_IDS_PER_QUERY)
            ]
        found: set[int] = set()
        for selected in selections:
            for task in self._tasks_by_id(
                project_id,
                include="id,predictions_model_versions",
                filters=[version_filter],
                selected=selected,
            ):
                versions = str(task.get("predictions_model_versions") or "")
                # A truncated list cannot be checked: trust the server's match then.
                if len(versions) >= DM_TEXT_LIMIT or model_version in {
                    v.strip() for v in versions.split(",")
                }:
                    found.add(int(task["id"]))
        return found

    def create_annotation(
        self,
        task_id: int,
        result: list[dict[str, Any]],
        *,
        parent_prediction: int | None = None,
        was_cancelled: bool = False,
    ) -> int:
        """One annotation, as the API key's user (the demo's oracle annotator)."""
        body: dict[str, Any] = {"result": result, "was_cancelled": was_cancelled}
        if parent_prediction is not None:
            body["parent_prediction"] = parent_prediction
        created = self._request(
            "POST", f"/api/tasks/{task_id}/annotations/", json_body=body, repeatable=False
        )
        return int(created["id"])

    def delete_project(self, project_id: int) -> None:
        self._request("DELETE", f"/api/projects/{project_id}/", repeatable=True, missing_ok=True)


@dataclass(frozen=True)
class _Chunking:
    """How an import is cut into requests."""

    unit: str  # what is imported, for the progress bar: "tasks"
    total: int | None  # how many, if known
    max_items: int
    max_bytes: int


def json_chunks(
    items: Iterable[T], encode: Callable[[T], Any], max_items: int, max_bytes: int
) -> Iterator[list[tuple[T, bytes]]]:
    """The items with their JSON, `encode`d and serialized as httpx would, in runs of at
    most `max_items` whose JSON array is at most `max_bytes` long (an item longer than that
    goes alone). Taken from `items` as they go: a run is handed on as soon as it is full."""
    chunk: list[tuple[T, bytes]] = []
    size = 1  # "[" and, per item, its JSON and "," or "]"
    for item in items:
        encoded = json.dumps(
            encode(item), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
        if chunk and size + len(encoded) + 1 > max_bytes:
            yield chunk
            chunk, size = [], 1
        chunk.append((item, encoded))
        size += len(encoded) + 1
        if len(chunk) >= max_items:
            yield chunk
            chunk, size = [], 1
    if chunk:
        yield chunk


def json_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of already encoded items."""
    return b"[" + b",".join(encoded) + b"]"


def _id_filter(operator: str, task_id: int) -> dict[str, Any]:
    """A Data Manager filter item comparing task ids with `operator` ("greater", ...)."""
    return {"filter": "filter:tasks:id", "operator": operator, "type": "Number", "value": task_id}


def _changed_filters(cursor: datetime | None, since: datetime | None) -> dict[str, Any]:
    """(updated_at >= cursor AND (annotated OR skipped)) OR (updated_at >= since AND created
    by `since`: it may have lost its annotations), written as Data Manager filter lines OR-ed
    together, each line a filter AND its child filter.

    A cursor before `since` (the late-commit overlap) re-reads annotated tasks only: the
    tasks imported in the overlap would otherwise all come again, unannotated."""

    def changed_from(moment: datetime | None, alternative: dict[str, Any]) -> dict[str, Any]:
        if moment is None:
            return alternative
        changed = {
            "filter": "filter:tasks:updated_at",
            "operator": "greater_or_equal",
            "type": "Datetime",
            "value": moment.strftime(DM_DATETIME_FORMAT),
        }
        return {**changed, "child_filter": alternative}

    annotated = [
        {"filter": f"filter:tasks:{count}", "operator": "greater", "type": "Number", "value": 0}
        for count in ("total_annotations", "cancelled_annotations")
    ]
    alternatives = [changed_from(cursor, alternative) for alternative in annotated]
    if since is not None:
        created = {
            "filter": "filter:tasks:created_at",
            "operator": "less_or_equal",
            "type": "Datetime",
            "value": since.strftime(DM_DATETIME_FORMAT),
        }
        alternatives.append(changed_from(max(cursor or since, since), created))
    return {"conjunction": "or", "items": alternatives}


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text))


def _error_detail(response: httpx.Response) -> str:
    """The informative part of an error body: validation errors, else `detail`, else text."""
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text)
    if isinstance(body, dict):
        detail = body.get("validation_errors") or body.get("detail") or body
        return _one_line(detail if isinstance(detail, str) else json.dumps(detail))
    return _one_line(response.text)


def _one_line(text: str) -> str:
    return " ".join(text.split())
