"""Each import storage is connected by the one find-or-create path: found again by where it
reads, created only when the project has none there."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from annotation_loop.labelstudio import LabelStudioClient


def test_storages_are_found_again_by_where_they_read_whatever_the_slashes() -> None:
    created: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            created.append(json.loads(request.content))
            return httpx.Response(201, json={"id": 99})
        listed = {
            "/api/storages/gcs/": [{"id": 5, "bucket": "b", "prefix": "raw/"}],
            "/api/storages/azure/": [{"id": 6, "container": "c", "prefix": ""}],
            "/api/storages/localfiles/": [{"id": 7, "path": f"{Path('/data').resolve()}/"}],
        }
        return httpx.Response(200, json=listed[request.url.path])

    client = LabelStudioClient("http://ls.test", "t", transport=httpx.MockTransport(handle))
    assert client.connect_gcs_source(1, bucket="b", prefix="/raw", credentials_json=None) == 5
    assert (
        client.connect_azure_source(1, container="c", prefix="/", account_name="a", account_key="k")
        == 6
    )
    assert client.connect_local_source(1, Path("/data")) == 7
    assert created == []

    assert client.connect_gcs_source(1, bucket="b", prefix="other/", credentials_json=None) == 99
    assert created == [
        {
            "project": 1,
            "title": "gs://b/other",
            "bucket": "b",
            "prefix": "other/",
            "use_blob_urls": False,
            "google_application_credentials": None,
            "presign": True,
        }
    ]
