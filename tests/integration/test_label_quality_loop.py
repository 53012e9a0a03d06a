"""Label quality through the real pipelines and Label Studio: the overlap set asks for three
annotators, the anchoring check's control tasks get no pre-annotation, simulated annotators of
known error rates label, and the training run measures agreement and anchoring on the model
version, sends a split to the Disagreement tab and takes a reviewer's decision."""

from __future__ import annotations

import httpx
import pytest
from support import pre_annotations, project_tasks
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.app.quality import label_quality_report
from annotation_loop.data.storage import ObjectStore
from annotation_loop.dev.oracle import SimulatedAnnotator
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.labelstudio.queues import DISAGREEMENT_QUEUE
from annotation_loop.task_types import get_task_type
from annotation_loop.vision.mnist import seed_mnist_batches

pytestmark = pytest.mark.integration

BATCH_SIZE = 40
CAREFUL = SimulatedAnnotator("careful")
HASTY = SimulatedAnnotator("hasty", error_rate=0.3)
TRUSTING = SimulatedAnnotator("trusting", accepts_pre_annotations=True)
ANNOTATORS = (CAREFUL, HASTY, TRUSTING)


def view_titles(client: LabelStudioClient, project_id: int) -> dict[str, dict]:
    views = client.transport.request(
        "GET", "/api/dm/views/", params={"project": project_id}, repeatable=True
    )
    return {view["data"]["title"]: view["data"] for view in views}


def test_label_quality_end_to_end(cloud_settings):
    settings = cloud_settings("local", overlap_share=0.5, overlap_annotators=3, anchoring_share=0.2)
    quality = settings.label_quality
    store = ObjectStore(settings.data_source("local"))
    truth = seed_mnist_batches(store, batches=2, batch_size=BATCH_SIZE, seed=3)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    synced = app.infer("local", settings)
    project_id = client.get_or_create_project(
        settings.project_name, get_task_type("image").label_config(settings.labels)
    )
    overlap = {t.task_id for t in synced.tasks if quality.in_overlap(t.content_hash)}
    assert 0 < len(overlap) < BATCH_SIZE
    # Label Studio serves the overlap set to three annotators, the rest to one.
    stored = {t["id"]: t for t in project_tasks(settings, project_id)}
    assert {i for i, t in stored.items() if t["overlap"] == 3} == overlap
    assert all(stored[i]["overlap"] == 1 for i in stored if i not in overlap)

    label_batch_with_oracle(client, settings, "local", synced, truth, ANNOTATORS, quality)
    first = app.train("local", settings, rerun=True)
    assert first.model_version == "1"
    recorded = Client().get_model_version(settings.model_name, "1").run_metadata["label_quality"]
    agreement = recorded["agreement"]
    assert agreement["measure"] == "krippendorff_alpha"
    assert agreement["tasks"] == len(overlap)
    assert -1.0 <= agreement["krippendorff_alpha"] < 1.0, "the hasty annotator slipped"
    assert len(agreement["pairs"]) == 3

    # The next batch: pre-annotated, except the anchoring check's control tasks.
    inferred = app.infer("local", settings, rerun=True)
    control = {
        t.task_id for t in inferred.tasks if quality.withholds_pre_annotation(t.content_hash)
    }
    assert control and control < {t.task_id for t in inferred.tasks}
    assert set(inferred.predictions) == {t.task_id for t in inferred.tasks} - control
    stored = {t["id"]: t for t in project_tasks(settings, project_id)}
    assert all(not pre_annotations(stored[i]) for i in control)
    label_batch_with_oracle(client, settings, "local", inferred, truth, ANNOTATORS, quality)

    # Two annotators split on a task with no majority: it waits for a reviewer.
    single = next(t.task_id for t in inferred.tasks if t.task_id not in overlap | control)
    [annotation] = stored_annotations(settings, single)
    label = annotation["result"][0]["value"]["choices"][0]
    other = next(name for name in settings.labels if name != label)
    second_opinion = client.ensure_user("second@annotators.local", "second")
    client.create_annotation(
        single,
        get_task_type("image").result_for_target(other, ""),
        completed_by=second_opinion,
    )
    second = app.train("local", settings, rerun=True)
    assert second.model_version == "2"
    recorded = Client().get_model_version(settings.model_name, "2").run_metadata["label_quality"]
    assert recorded["undecided"] >= 1
    tab = view_titles(client, project_id)[DISAGREEMENT_QUEUE]
    assert {
        "filter": "filter:tasks:id",
        "operator": "equal",
        "type": "Number",
        "value": single,
    } in (tab["filters"]["items"])
    # Anchoring: the annotator who accepts every pre-annotation keeps every wrong one that
    # could be judged; the careful one none.
    per_annotator = recorded["anchoring"]["per_annotator"]
    trusting = per_annotator[str(client.ensure_user(TRUSTING.email, TRUSTING.name))]
    careful = per_annotator[str(client.ensure_user(CAREFUL.email, CAREFUL.name))]
    if trusting["wrong_suggestions"]:
        assert trusting["wrong_suggestions_kept"] == 1.0
    assert careful.get("wrong_suggestions_kept", 0.0) == 0.0
    assert recorded["anchoring"]["control_tasks"] > 0

    # A reviewer decides: the split leaves the tab and trains with the reviewer's label.
    httpx.patch(
        f"{settings.label_studio_url}/api/annotations/{annotation['id']}/",
        json={"ground_truth": True},
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=30,
    ).raise_for_status()
    third = app.train("local", settings, rerun=True)
    assert third.model_version == "3"
    tab = view_titles(client, project_id).get(DISAGREEMENT_QUEUE)
    assert tab is None or single not in [item["value"] for item in tab["filters"]["items"]]

    report = label_quality_report(settings)
    assert "krippendorff_alpha" in report and "wrong suggestions kept" in report
    assert all(f"\n{version} " in report for version in ("1", "2", "3")), "a row per round"
    assert f"  {TRUSTING.email} agrees" in report, "annotators named by their email"
    # The newest round is reported as measured, whatever the settings say now.
    assert recorded["quality"] == quality.model_dump()
    changed = settings.model_copy(update={"overlap_share": 0.0, "anchoring_share": 0.0})
    assert label_quality_report(changed) == report


def stored_annotations(settings, task_id: int) -> list[dict]:
    response = httpx.get(
        f"{settings.label_studio_url}/api/tasks/{task_id}/annotations/",
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()
