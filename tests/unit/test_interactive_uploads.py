"""Media uploaded to Label Studio itself: which URLs the ML backend reads (only Label Studio's
own /data/upload/), with which token scheme, within which size, and how a task made by
uploading a file gets its model input (the real server: the integration tests)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from annotation_loop.data.confined_reads import RefusedObject, UnreadableObject
from annotation_loop.data.storage import DataSource
from annotation_loop.errors import LabelStudioAuthError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.labelstudio.uploads import upload_path
from annotation_loop.ml_backend.predictions import input_ref_of
from annotation_loop.ml_backend.uploads import StoreWithUploads
from annotation_loop.task_types import get_task_type

LS = "http://127.0.0.1:8093"
UPLOAD = "/data/upload/3/5f1c2a-digit.png"
LEGACY_KEY = "a" * 40
PAT = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.c2lnbmF0dXJl"  # a JWT's shape
ACCESS = "eyJ.access.token"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.mark.parametrize(
    ("ref", "base", "path"),
    [
        (UPLOAD, LS, UPLOAD),
        (f"{LS}{UPLOAD}", LS, UPLOAD),
        (f"{LS}{UPLOAD}", f"{LS}/", UPLOAD),
        ("http://127.0.0.1:80/data/upload/1/a.png", "http://127.0.0.1", "/data/upload/1/a.png"),
        (
            "HTTP://LS.example.com/data/upload/1/a.png",
            "http://ls.example.com",
            "/data/upload/1/a.png",
        ),
        # Label Studio served under a path writes it into its upload URLs.
        ("/ls/data/upload/1/a.png", "https://h.example.com/ls", "/data/upload/1/a.png"),
        (
            "https://h.example.com/ls/data/upload/1/a.png",
            "https://h.example.com/ls",
            "/data/upload/1/a.png",
        ),
    ],
)
def test_uploads_on_label_studio_are_read(ref: str, base: str, path: str) -> None:
    assert upload_path(ref, base) == path


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        (f"http://169.254.169.254{UPLOAD}", "not on Label Studio's own host 127.0.0.1:8093"),
        (f"http://localhost:8093{UPLOAD}", "not on Label Studio's own host"),
        (f"http://127.0.0.1:8094{UPLOAD}", "not on Label Studio's own host"),
        (f"https://127.0.0.1:8093{UPLOAD}", "not on Label Studio's own host"),
        (f"http://127.0.0.1:8093@evil.example.com{UPLOAD}", "not on Label Studio's own host"),
        (f"http://user:pw@127.0.0.1:8093{UPLOAD}", "not on Label Studio's own host"),
        (f"//evil.example.com{UPLOAD}", "not on Label Studio's own host"),
        (f"file://{UPLOAD}", "not on Label Studio's own host"),
        (f"http://127.0.0.1:notaport{UPLOAD}", "not on Label Studio's own host"),
        ("/api/current-user/whoami", "not a file uploaded to Label Studio"),
        (f"{LS}/data/local-files/?d=x.png", "a query or fragment"),
        (f"{LS}/data/uploads-elsewhere/1/a.png", "not a file uploaded"),
        ("/data/upload/../../api/projects", "a '..' in the path"),
        ("/data/upload/%2e%2e/%2E%2E/api/projects", "a '..' in the path"),
        ("/data/upload/..%5c..%5capi", "a '..' in the path"),
        (f"{UPLOAD}?next=/api/projects", "a query or fragment"),
    ],
)
def test_anything_else_is_refused(ref: str, reason: str) -> None:
    with pytest.raises(RefusedObject, match=reason.replace("(", r"\(")):
        upload_path(ref, LS)


def label_studio(handler: Handler, api_key: str = LEGACY_KEY) -> LabelStudioClient:
    return LabelStudioClient(LS, api_key, transport=httpx.MockTransport(handler))


def serving(files: dict[str, bytes], seen: list[httpx.Request]) -> Handler:
    """Label Studio's file and token endpoints: a legacy key or the PAT's access token."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/token/refresh/":
            assert request.read() == b'{"refresh":"' + PAT.encode() + b'"}'
            return httpx.Response(200, json={"access": ACCESS})
        authorization = request.headers.get("Authorization")
        if authorization not in (f"Token {LEGACY_KEY}", f"Bearer {ACCESS}"):
            return httpx.Response(401, json={"detail": "Invalid token."})
        if request.url.path not in files:
            return httpx.Response(404)
        return httpx.Response(200, content=files[request.url.path])

    return handle


def test_a_legacy_token_goes_as_token() -> None:
    seen: list[httpx.Request] = []
    client = label_studio(serving({UPLOAD: b"png"}, seen))
    assert client.read_upload(UPLOAD, 100) == b"png"
    assert [(r.url.path, r.headers["Authorization"]) for r in seen] == [
        (UPLOAD, f"Token {LEGACY_KEY}")
    ]


def test_a_personal_access_token_is_exchanged_and_goes_as_bearer() -> None:
    seen: list[httpx.Request] = []
    client = label_studio(serving({UPLOAD: b"png"}, seen), api_key=PAT)
    assert client.read_upload(f"{LS}{UPLOAD}", 100) == b"png"
    assert client.read_upload(UPLOAD, 100) == b"png"
    assert [(r.url.path, r.headers.get("Authorization")) for r in seen] == [
        ("/api/token/refresh/", None),
        (UPLOAD, f"Bearer {ACCESS}"),
        (UPLOAD, f"Bearer {ACCESS}"),  # the access token is kept until refused
    ]


def test_an_expired_access_token_is_exchanged_again() -> None:
    seen: list[httpx.Request] = []
    files = {UPLOAD: b"png"}
    handle = serving(files, seen)
    expired = {"first": True}

    def expiring(request: httpx.Request) -> httpx.Response:
        if request.url.path == UPLOAD and expired.pop("first", False):
            seen.append(request)
            return httpx.Response(401)
        return handle(request)

    assert label_studio(expiring, api_key=PAT).read_upload(UPLOAD, 100) == b"png"
    assert [r.url.path for r in seen] == [
        "/api/token/refresh/",
        UPLOAD,
        "/api/token/refresh/",
        UPLOAD,
    ]


def test_a_rejected_key_is_an_auth_error_and_a_missing_file_is_skipped() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(LabelStudioAuthError, match="rejected the API key"):
        label_studio(serving({}, seen), api_key="b" * 40).read_upload(UPLOAD, 100)
    with pytest.raises(UnreadableObject, match="answered HTTP 404 for /data/upload/3/"):
        label_studio(serving({}, seen)).read_upload(UPLOAD, 100)


def test_a_refused_url_is_never_requested() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(RefusedObject):
        label_studio(serving({}, seen)).read_upload("http://10.0.0.1/data/upload/1/a.png", 100)
    assert seen == []


def test_an_upload_over_the_limit_is_refused_declared_or_streamed() -> None:
    def declared(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 101)

    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 60] * 1000))  # no Content-Length

    with pytest.raises(RefusedObject, match="101 bytes, over the limit of 100 bytes"):
        label_studio(declared).read_upload(UPLOAD, 100)
    with pytest.raises(RefusedObject, match="over the limit of 100 bytes"):
        label_studio(streamed).read_upload(UPLOAD, 100)


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_uploaded_image_becomes_the_model_input(tmp_path: Path) -> None:
    image = get_task_type("image")
    source = DataSource(root_uri=str(tmp_path), dataset="mnist", max_image_pixels=10_000)
    digit, huge = png((28, 28)), png((200, 200))
    seen: list[httpx.Request] = []
    files = {UPLOAD: digit, "/data/upload/3/huge.png": huge}
    store = StoreWithUploads(source, label_studio(serving(files, seen)))
    in_bucket = store.write_bytes("batch_1/a.png", digit)

    uploaded = input_ref_of(image, {"image": UPLOAD}, store)
    assert uploaded == f"{LS}{UPLOAD}"
    assert input_ref_of(image, {"image": f"{LS}{UPLOAD}"}, store) == f"{LS}{UPLOAD}"
    assert input_ref_of(image, {"image": "s3://b/x.png", "uri": in_bucket}, store) == in_bucket
    with pytest.raises(KeyError):
        input_ref_of(image, {"image": "https://example.com/x.png"}, store)
    # The text task types read their input from the data, never from Label Studio.
    assert input_ref_of(get_task_type("ner"), {"text": UPLOAD}, store) == UPLOAD

    refs = [
        ("uploaded", uploaded),
        ("bucket", in_bucket),
        ("elsewhere", "http://10.0.0.1/data/upload/3/a.png"),
        ("too many pixels", f"{LS}/data/upload/3/huge.png"),
    ]
    inputs = dict(image.load_inputs(store, refs))
    assert inputs == {
        "uploaded": digit,
        "bucket": digit,
        "elsewhere": None,
        "too many pixels": None,
    }
    assert sorted(r.url.path for r in seen) == [
        "/data/upload/3/5f1c2a-digit.png",
        "/data/upload/3/huge.png",
    ]
