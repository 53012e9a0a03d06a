"""Who may call the ML backend: Label Studio, with the backend's HTTP basic auth (its
`auth_method=BASIC_AUTH` sends it on every call, `/health` included) or, on `/webhook`, with
the webhook's secret header (Label Studio's webhooks carry headers, not basic auth).

The credentials are the user's own (`LOOP_BACKEND_USER` / `LOOP_BACKEND_PASSWORD`) or made once
at random and kept in the state folder, readable by its owner only: the backend and the
`run.py serve` that hands them to Label Studio run as that user on that machine, and nobody
else needs them (a ZenML secret would show them to every user of the ZenML server).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from annotation_loop.data.uris import is_loopback_host
from annotation_loop.errors import ConfigurationError
from annotation_loop.private_files import PRIVATE_FILE, private_dir
from annotation_loop.settings import Settings

WEBHOOK_SECRET_HEADER = "X-Annotation-Loop-Webhook-Secret"
OPEN_PATH = "/health"  # Label Studio's health check; it tells others only that it is up
WEBHOOK_PATH = "/webhook"
GENERATED_USER = "label-studio"
SECRETS_FILE = "ml_backend.json"


@dataclass(frozen=True)
class BackendCredentials:
    user: str
    password: SecretStr
    webhook_secret: SecretStr

    def basic_auth_matches(self, user: str, password: str) -> bool:
        # Both compared every time, so timing tells nothing about which one was wrong.
        user_ok = secrets.compare_digest(user.encode(), self.user.encode())
        password_ok = secrets.compare_digest(
            password.encode(), self.password.get_secret_value().encode()
        )
        return user_ok and password_ok

    def webhook_secret_matches(self, value: str) -> bool:
        expected = self.webhook_secret.get_secret_value()
        return secrets.compare_digest(value.encode(), expected.encode())


def backend_credentials(settings: Settings) -> BackendCredentials:
    """The backend's credentials: the user's own basic auth if set, else the stored ones (made
    on first use); the webhook secret is always the stored one."""
    stored = stored_secrets(settings.state_dir / "secrets" / SECRETS_FILE)
    given = (settings.backend_user, settings.backend_password)
    if given == (None, None):
        return BackendCredentials(
            stored["user"], SecretStr(stored["password"]), SecretStr(stored["webhook_secret"])
        )
    user, password = given
    if user is None or password is None:
        raise ConfigurationError(
            "Set both LOOP_BACKEND_USER and LOOP_BACKEND_PASSWORD, or neither (serve then "
            "makes its own credentials)"
        )
    # Label Studio sends basic auth as Latin-1 and the backend reads it as ASCII.
    if ":" in user or not all(map(_printable_ascii, (user, password.get_secret_value()))):
        raise ConfigurationError(
            "LOOP_BACKEND_USER and LOOP_BACKEND_PASSWORD must be printable ASCII, and the user "
            "must not contain ':'"
        )
    return BackendCredentials(user, password, SecretStr(stored["webhook_secret"]))


def stored_secrets(path: Path) -> dict[str, str]:
    """The secrets kept at `path` (made at random on first use), in a folder and a file that
    only their owner may read."""
    private_dir(path.parent)
    if not path.exists():
        _create_once(
            path,
            {
                "user": GENERATED_USER,
                "password": secrets.token_urlsafe(32),
                "webhook_secret": secrets.token_urlsafe(32),
            },
        )
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path} is readable by others, so its secrets may be known: delete it (serve then "
            "makes new ones and gives them to Label Studio)"
        )
    try:
        stored = json.loads(path.read_text())
        return {key: str(stored[key]) for key in ("user", "password", "webhook_secret")}
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"{path} is not the ML backend's secrets file: delete it (serve then makes a new one)"
        ) from None


def _create_once(path: Path, content: dict[str, str]) -> None:
    """Writes `path` unless it exists, complete or not at all, owner-only from the start; two
    backends starting at once keep the first one's."""
    draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(content, file)
        os.link(draft, path)  # fails if another backend was first
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def check_exposure(host: str, url: str, authenticate: bool) -> None:
    """Refuses to serve without authentication where other machines can reach the backend:
    on a `host` other than loopback, or behind a `url` (a proxy's) on another host."""
    if authenticate:
        return
    for where in (host, urlsplit(url).hostname or ""):
        if not is_loopback_host(where):
            raise ConfigurationError(
                f"Refusing to serve the ML backend without authentication on {where}: drop "
                "--no-auth, or serve on 127.0.0.1 with a loopback --url"
            )


class BackendAuth:
    """Checks a request's credentials; None: no authentication (`--no-auth`, loopback only)."""

    def __init__(self, credentials: BackendCredentials | None) -> None:
        self._credentials = credentials
        self._basic = HTTPBasic(auto_error=False, realm="annotation-loop ML backend")

    async def authenticated(self, request: Request) -> bool:
        """Whether the request carries the backend's basic auth (never raises)."""
        if self._credentials is None:
            return True
        try:
            given = await self._basic(request)
        except HTTPException:  # a malformed Authorization header
            return False
        return given is not None and self._credentials.basic_auth_matches(
            given.username, given.password
        )

    async def allows(self, request: Request) -> bool:
        """Whether the request may reach its route: /health always, /webhook with basic auth
        (Label Studio's "Start Training" comes through the ML backend connection) or the
        webhook's secret header (its project webhooks), anything else with basic auth."""
        if request.url.path == OPEN_PATH or await self.authenticated(request):
            return True
        secret = request.headers.get(WEBHOOK_SECRET_HEADER)
        return (
            request.url.path == WEBHOOK_PATH
            and secret is not None
            and self._credentials is not None
            and self._credentials.webhook_secret_matches(secret)
        )

    def unauthorized(self) -> JSONResponse:
        return JSONResponse(
            {"detail": "Not authenticated"},
            status_code=401,
            headers=self._basic.make_authenticate_headers(),
        )


class AuthGate:
    """Answers 401 to every request `auth` does not allow, before anything reads its body,
    whatever its path (an unknown one too)."""

    def __init__(self, app: ASGIApp, auth: BackendAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not await self.auth.allows(Request(scope)):
            await self.auth.unauthorized()(scope, receive, send)
            return
        await self.app(scope, receive, send)
