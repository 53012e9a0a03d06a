"""Who may call the ML backend: basic auth on every route but /health, the webhook's secret
header on /webhook, the credentials' storage, and no open backend off loopback."""

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import SecretStr

from annotation_loop.app.serve import backend_server
from annotation_loop.errors import ConfigurationError
from annotation_loop.ml_backend import ModelHolder, ServedModel, create_app
from annotation_loop.ml_backend.auth import (
    SECRETS_FILE,
    WEBHOOK_SECRET_HEADER,
    BackendCredentials,
    _create_once,
    backend_credentials,
    check_exposure,
)
from annotation_loop.settings import Settings

CREDENTIALS = BackendCredentials("label-studio", SecretStr("s3cret"), SecretStr("hook-s3cret"))
PROJECT_ID = 7
BODIES: dict[str, Any] = {
    "/setup": {"project": "7.1", "schema": "<View/>"},
    "/predict": {"tasks": [{"id": 1, "data": {"text": "x"}}], "project": "7.1", "label_config": ""},
    "/webhook": {"action": "START_TRAINING", "project": {"id": PROJECT_ID}},
}


class NoModels:
    def production_version(self) -> str | None:
        return None

    def load(self, version: str) -> ServedModel:
        raise AssertionError("nothing to load")


def backend_app(credentials: BackendCredentials | None = CREDENTIALS) -> Any:
    return create_app(ModelHolder(NoModels()), None, PROJECT_ID, credentials)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def call(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    if path in BODIES:
        return client.post(path, json=BODIES[path], headers=headers)
    return client.get(path, headers=headers)


def test_the_backend_has_only_the_protocol_routes() -> None:
    paths = {route.path for route in backend_app().routes if isinstance(route, APIRoute)}
    assert paths == {"/health", "/setup", "/predict", "/webhook"}  # no /docs, no /openapi.json


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/", "/docs", "/nope"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("label-studio", "wrong"),
        basic("someone", "s3cret"),
        basic("label-studio", "s3cret-and-more"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer s3cret"},
    ],
    ids=["none", "password", "user", "longer", "malformed", "bearer"],
)
def test_every_route_but_health_needs_the_credentials(path: str, headers: dict[str, str]) -> None:
    answer = call(TestClient(backend_app()), path, headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    assert answer.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("path", ["/setup", "/predict", "/webhook", "/health"])
def test_the_credentials_open_every_route(path: str) -> None:
    answer = call(TestClient(backend_app()), path, basic("label-studio", "s3cret"))
    assert answer.status_code == 200, answer.text


def test_health_is_open_and_says_only_that_it_is_up() -> None:
    answer = TestClient(backend_app()).get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "UP", "model_class": "annotation_loop"}


@pytest.mark.parametrize(
    ("secret", "status"),
    [("hook-s3cret", 200), ("hook-s3cre", 401), ("hook-s3cret ", 401), ("s3cret", 401)],
)
def test_the_webhook_needs_its_secret_header(secret: str, status: int) -> None:
    client = TestClient(backend_app())
    answer = client.post(
        "/webhook", json=BODIES["/webhook"], headers={WEBHOOK_SECRET_HEADER: secret}
    )
    assert answer.status_code == status


@pytest.mark.parametrize("path", ["/setup", "/predict"])
def test_the_webhook_secret_opens_only_the_webhook(path: str) -> None:
    answer = call(TestClient(backend_app()), path, {WEBHOOK_SECRET_HEADER: "hook-s3cret"})
    assert answer.status_code == 401


def test_a_backend_without_credentials_answers_anyone() -> None:
    client = TestClient(backend_app(credentials=None))
    for path in ("/setup", "/predict", "/webhook"):
        assert call(client, path, {}).status_code == 200


# -- serving only where it is safe ---------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "url", "authenticate", "refused"),
    [
        ("0.0.0.0", "http://127.0.0.1:9090", False, "0.0.0.0"),
        ("192.168.1.5", "http://192.168.1.5:9090", False, "192.168.1.5"),
        ("::", "http://[::1]:9090", False, "::"),
        ("backend.example.com", "http://localhost:9090", False, "backend.example.com"),
        # Behind a proxy that others reach.
        ("127.0.0.1", "https://backend.example.com", False, "backend.example.com"),
        ("127.0.0.1", "http://127.0.0.1:9090", False, None),
        ("127.0.0.2", "http://127.0.0.2:9090", False, None),
        ("::1", "http://[::1]:9090", False, None),
        ("localhost", "http://localhost:9090", False, None),
        ("0.0.0.0", "https://backend.example.com", True, None),
    ],
)
def test_no_authentication_only_on_loopback(
    host: str, url: str, authenticate: bool, refused: str | None
) -> None:
    if refused:
        with pytest.raises(ConfigurationError, match=f"without authentication on {refused}:"):
            check_exposure(host, url, authenticate)
    else:
        check_exposure(host, url, authenticate)


def test_serve_refuses_an_open_backend_off_loopback_before_anything_else(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    with pytest.raises(ConfigurationError) as refused:
        # Nothing is started or asked: no stack, Label Studio or model is needed to refuse.
        backend_server(
            "local", settings, "0.0.0.0", 9090, "http://x:9090", 0, 0, authenticate=False
        )
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "state").exists()


# -- the credentials -----------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_credentials_are_made_once_and_kept_owner_only(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    first = backend_credentials(settings)
    again = backend_credentials(settings)
    assert first == again
    assert first.user == "label-studio"
    assert len(first.password.get_secret_value()) >= 40
    assert first.webhook_secret != first.password
    stored = tmp_path / "state" / "secrets" / SECRETS_FILE
    assert mode(stored) == 0o600
    assert mode(stored.parent) == 0o700
    assert [p.name for p in stored.parent.iterdir()] == [SECRETS_FILE]  # no draft left
    other = backend_credentials(Settings(state_dir=tmp_path / "elsewhere"))
    assert other.password != first.password


def test_the_users_own_credentials(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path, backend_user="annotators", backend_password=SecretStr("their pass")
    )
    credentials = backend_credentials(settings)
    assert (credentials.user, credentials.password.get_secret_value()) == (
        "annotators",
        "their pass",
    )
    assert (
        credentials.webhook_secret
        == backend_credentials(Settings(state_dir=tmp_path)).webhook_secret
    )


@pytest.mark.parametrize(
    ("user", "password"),
    [("annotators", None), (None, "p"), ("a:b", "p"), ("annotators", "pässword")],
)
def test_incomplete_or_unsendable_credentials_are_refused(
    tmp_path: Path, user: str | None, password: str | None
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        backend_user=user,
        backend_password=None if password is None else SecretStr(password),
    )
    with pytest.raises(ConfigurationError, match="LOOP_BACKEND_USER"):
        backend_credentials(settings)


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    backend_credentials(settings)
    stored = tmp_path / "secrets" / SECRETS_FILE
    stored.chmod(0o644)
    with pytest.raises(ConfigurationError, match=r"readable by others.*delete it"):
        backend_credentials(settings)


def test_a_foreign_secrets_file_is_refused(tmp_path: Path) -> None:
    stored = tmp_path / "secrets" / SECRETS_FILE
    stored.parent.mkdir(mode=0o700)
    stored.write_text("[]")
    stored.chmod(0o600)
    with pytest.raises(ConfigurationError, match="not the ML backend's secrets file"):
        backend_credentials(Settings(state_dir=tmp_path))


def test_the_first_of_two_backends_keeps_its_secrets(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    _create_once(path, {"password": "first"})
    _create_once(path, {"password": "second"})
    assert path.read_text() == '{"password": "first"}'
    assert sorted(os.listdir(tmp_path)) == ["secrets.json"]
