"""One request to Label Studio's API: authenticated, retried when that is safe, its JSON
decoded, and every failure raised as an error that says what to do next."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from annotation_loop.data.confined_reads import UnreadableObject, too_big
from annotation_loop.errors import (
    LabelStudioAuthError,
    LabelStudioHTTPError,
    LabelStudioUnreachable,
)

logger = logging.getLogger(__name__)
# httpx logs every request at INFO, which ZenML's step logs would show: thousands of lines
# per sync. Our own log lines say what was done.
logging.getLogger("httpx").setLevel(logging.WARNING)

RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
# After an import chunk failed in doubt, and between the pages of a bulk read: how long to
# wait for Label Studio to answer again (a restart takes 5-10 s, longer on a busy machine),
# so that a restart costs a long import or fetch nothing.
RECOVERY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
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
DETAIL_CHARS = 200  # of the server's reason, in an error message
WHOAMI = "/api/current-user/whoami"


class Transport:
    """Requests to the Label Studio at `url` through `http` (which authenticates them)."""

    def __init__(self, url: str, http: httpx.Client) -> None:
        self.url = url
        self._http = http

    def request(
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
        refusal: str | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body (None when empty, or on 404 with
        `missing_ok`). The body is `json_body`, or `json_content`: JSON already encoded.

        `repeatable`: the call may be repeated after the server got it (reads, updates,
        deletes); it is retried on dropped connections, timeouts and 5xx. Other calls
        (creates, imports) are retried only when the request never reached the server, so a
        retry cannot create anything twice; when it may have (a dropped answer, a proxy's
        502/503/504) they raise `LabelStudioUnreachable` at once, for the caller to check
        what was created. `timeout` replaces the client's own.

        An error status raises `LabelStudioAuthError` (401, 403) or `LabelStudioHTTPError`,
        whose message is `refusal` (what the refusal means, what to do next) when given.
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
                    return self._decode(method, path, response, refusal)
                failure = f"HTTP {status}"
            if not delays:
                raise self._unreachable(failure)
            delay = delays.pop(0)
            logger.warning(
                "Label Studio %s %s failed (%s): retrying in %.1fs", method, path, failure, delay
            )
            time.sleep(delay)

    def create(
        self,
        path: str,
        body: dict[str, Any],
        *,
        timeout: float | None = None,
        refusal: str | None = None,
    ) -> int:
        """POSTs `body` to `path` (never repeated once the server may have it, see
        `request`); returns the id of the object Label Studio created."""
        created = self.request(
            "POST", path, json_body=body, repeatable=False, timeout=timeout, refusal=refusal
        )
        return int(created["id"])

    def read_file(self, path: str, max_bytes: int) -> bytes:
        """The bytes of the file Label Studio serves at `path`, read as they come and refused
        past `max_bytes`; redirects are not followed, so only Label Studio itself answers.

        Raises `LabelStudioUnreachable`, `LabelStudioAuthError` on 401 (the API key: every
        read would fail), and `UnreadableObject` when only this file cannot be read (missing,
        not the key's user's to read, too big), for the caller to skip it.
        """
        try:
            with self._http.stream("GET", path, follow_redirects=False) as response:
                status = response.status_code
                if status == 401:
                    raise LabelStudioAuthError(self._auth_advice(status), status, "GET", path, "")
                if status != 200:
                    raise UnreadableObject(
                        f"Label Studio at {self.url} answered HTTP {status} for {path}: the "
                        "file is gone, or the API key's user may not read it"
                    )
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise too_big(path, max_bytes, int(declared))
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise too_big(path, max_bytes)
                return bytes(data)
        except (*UNANSWERED_FAILURES, *ANSWERED_FAILURES) as exc:
            raise self._unreachable(f"{type(exc).__name__} reading {path}: {exc}") from None

    def check(self) -> None:
        """Raises `LabelStudioUnreachable` or `LabelStudioAuthError` unless the API answers
        (at once: this is the check before a run, not a call worth waiting for)."""
        self.request("GET", WHOAMI, repeatable=True, retry_delays=())

    def wait_until_answering(self) -> None:
        """Returns once the API answers again (a restart), else raises
        `LabelStudioUnreachable`."""
        self.request("GET", WHOAMI, repeatable=True, retry_delays=RECOVERY_DELAYS_S)

    def _unreachable(self, reason: str) -> LabelStudioUnreachable:
        return LabelStudioUnreachable(
            f"Label Studio is not reachable at {self.url} ({_one_line(reason)}): start it "
            "with `python run.py up` or set LOOP_LABEL_STUDIO_URL"
        )

    def _decode(self, method: str, path: str, response: httpx.Response, refusal: str | None) -> Any:
        status = response.status_code
        if status < 400:
            return response.json() if response.content else None
        detail = _error_detail(response)[:DETAIL_CHARS]
        if status in (401, 403):
            raise LabelStudioAuthError(self._auth_advice(status), status, method, path, detail)
        meaning = refusal or self._advice(status)
        raise LabelStudioHTTPError(meaning, status, method, path, detail)

    def _auth_advice(self, status: int) -> str:
        if status == 401:
            return (
                f"Label Studio at {self.url} rejected the API key: set "
                "LOOP_LABEL_STUDIO_API_KEY to a legacy token or personal access token from "
                "Account & Settings"
            )
        return (
            f"Label Studio at {self.url} does not let the API key's user do this: set "
            "LOOP_LABEL_STUDIO_API_KEY to the token of a user who may do it in the project's "
            "organization"
        )

    def _advice(self, status: int) -> str:
        if status == 404:
            return (
                f"Label Studio at {self.url} has no such object: check that the project "
                "(LOOP_PROJECT_NAME) and its tasks were not deleted meanwhile"
            )
        if status >= 500:
            return f"Label Studio at {self.url} failed on a request: its log says why"
        return (
            f"Label Studio at {self.url} refused a request: fix the setting or data its "
            "reason names"
        )


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


class ApiArea:
    """One area of Label Studio's API (projects, storages, ...). Its requests go through
    `transport`, which also serves requests no area has a method for (tests' checks)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
