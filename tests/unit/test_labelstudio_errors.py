"""Label Studio's error answers become structured errors: which request, what status, the
server's reason, and one line that says what to do next."""

from __future__ import annotations

import json

import httpx
import pytest

from annotation_loop.errors import LabelStudioAuthError, LabelStudioHTTPError
from annotation_loop.labelstudio import LabelStudioClient


def client_answering(answers: dict[tuple[str, str], httpx.Response]) -> LabelStudioClient:
    """A client whose Label Studio answers (method, path) as given; anything else is a test bug."""

    def handle(request: httpx.Request) -> httpx.Response:
        return answers[(request.method, request.url.path)]

    return LabelStudioClient(
        "http://ls.test", "legacy-token", transport=httpx.MockTransport(handle)
    )


def test_a_refusal_carries_status_method_path_and_detail_on_one_line() -> None:
    reason = {"validation_errors": {"label_config": ["Labels are\nmissing:", "cat"]}}
    client = client_answering(
        {
            ("GET", "/api/projects/"): httpx.Response(200, json={"results": [], "next": None}),
            ("POST", "/api/projects/"): httpx.Response(400, json=reason),
        }
    )
    with pytest.raises(LabelStudioHTTPError) as raised:
        client.get_or_create_project("p", "<View/>")
    error = raised.value
    assert (error.status, error.method, error.path) == (400, "POST", "/api/projects/")
    assert error.detail == " ".join(json.dumps(reason["validation_errors"]).split())
    message = str(error)
    assert "\n" not in message
    assert "HTTP 400 on POST /api/projects/" in message and error.detail in message
    assert "fix the setting or data" in message, "it says what to do next"


def test_a_server_error_page_is_cut_to_one_line_and_points_at_the_servers_log() -> None:
    page = "<html>\n<body>\n  Server Error (500)\n</body>\n</html>\n"
    client = client_answering(
        {("POST", "/api/tasks/7/annotations/"): httpx.Response(500, text=page)}
    )
    with pytest.raises(LabelStudioHTTPError) as raised:
        client.create_annotation(7, [])
    error = raised.value
    assert (error.status, error.method, error.path) == (500, "POST", "/api/tasks/7/annotations/")
    assert error.detail == "<html> <body> Server Error (500) </body> </html>"
    assert "\n" not in str(error) and "its log says why" in str(error)


def test_a_rejected_key_is_an_auth_error_with_the_same_fields() -> None:
    client = client_answering(
        {
            ("GET", "/api/current-user/whoami"): httpx.Response(
                401, json={"detail": "Invalid token."}
            )
        }
    )
    with pytest.raises(LabelStudioAuthError) as raised:
        client.check()
    error = raised.value
    assert isinstance(error, LabelStudioHTTPError)
    assert (error.status, error.method, error.path) == (401, "GET", "/api/current-user/whoami")
    assert error.detail == "Invalid token."
    assert "LOOP_LABEL_STUDIO_API_KEY" in str(error) and "\n" not in str(error)


def test_a_callers_meaning_replaces_the_generic_one_but_not_an_auth_error() -> None:
    def storage_client(status: int) -> LabelStudioClient:
        return client_answering(
            {
                ("GET", "/api/storages/s3/"): httpx.Response(200, json=[]),
                ("POST", "/api/storages/s3/"): httpx.Response(status, json={"detail": "no"}),
            }
        )

    def connect(client: LabelStudioClient) -> int:
        return client.connect_s3_source(
            1,
            bucket="b",
            prefix="raw",
            endpoint_url=None,
            access_key="k",
            secret_key="s",
            region="us-east-1",
        )

    with pytest.raises(LabelStudioHTTPError) as refused:
        connect(storage_client(400))
    assert type(refused.value) is LabelStudioHTTPError
    assert str(refused.value).startswith("Label Studio could not connect s3://b/raw: ")
    assert (refused.value.status, refused.value.path) == (400, "/api/storages/s3/")

    with pytest.raises(LabelStudioAuthError) as forbidden:
        connect(storage_client(403))
    assert "could not connect" not in str(forbidden.value)
    assert forbidden.value.status == 403


def test_a_refused_ml_backend_keeps_the_answers_fields() -> None:
    client = client_answering(
        {
            ("GET", "/api/ml"): httpx.Response(200, json=[]),
            ("POST", "/api/ml"): httpx.Response(403, json={"detail": "URL is not allowed"}),
        }
    )
    with pytest.raises(LabelStudioHTTPError) as raised:
        client.connect_ml_backend(1, "http://10.0.0.5:9090", "m:1", basic_auth=None)
    error = raised.value
    assert (error.status, error.method, error.path) == (403, "POST", "/api/ml")
    assert str(error).startswith("Label Studio refused the ML backend at http://10.0.0.5:9090: ")
