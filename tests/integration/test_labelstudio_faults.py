"""Imports that fail in doubt (the server got the chunk, its answer was lost) are resumed
without duplicates or gaps, against the real Label Studio."""

from __future__ import annotations

import httpx
import pytest
from support import project_tasks

from annotation_loop.errors import LabelStudioUnreachable
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


def task_datas(count: int) -> list[dict]:
    return [{"image": f"/x/{i}.png", "content_hash": f"md5:{i:032x}"} for i in range(count)]


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
