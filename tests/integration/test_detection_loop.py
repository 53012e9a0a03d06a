"""The object detection loop against the real Label Studio: demo canvases of digits, the
oracle's boxes, an FCOS version promoted on mAP@0.5 whose boxes (with scores) pre-annotate
the next batch, the oracle's count of kept boxes, and the snapshot exported as COCO/YOLO."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pycocotools.coco import COCO
from support import pre_annotations, project_tasks
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app import training
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.app.export import export_snapshot
from annotation_loop.configs import config_path, load_training_parameters
from annotation_loop.data.storage import ObjectStore
from annotation_loop.detection.boxes import ImageBoxes
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import demo_data_of

pytestmark = pytest.mark.integration

BATCH_SIZE = 16
# Small and quick on two CPU cores: the loop's plumbing is under test, not the detector.
QUICK = {"image_size": 128, "epochs": 4, "batch_size": 8, "score_threshold": 0.05}


def use_train_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, train_config: dict) -> None:
    """The next `app.train` reads configs/detection/training.yaml with this train_config."""
    document = yaml.safe_load(config_path("detection", "training").read_text())
    document["parameters"]["train_config"] |= train_config
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setattr(
        training, "load_training_parameters", lambda task: load_training_parameters(task, path)
    )


# The S3 stand-in: the boxes, the model and the export all go through a real bucket.
CLOUD = "aws"


def test_the_detection_loop_end_to_end(cloud_settings, monkeypatch, tmp_path):
    settings = cloud_settings(CLOUD, task="detection")
    task_type = get_task_type("detection")
    store = ObjectStore(settings.data_source(CLOUD))
    store.ensure_bucket()
    truth = demo_data_of(task_type).seed_demo(store, batches=2, batch_size=BATCH_SIZE, seed=2)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    synced = app.infer(CLOUD, settings, rerun=False)
    assert synced.batch == "batch_1" and len(synced.tasks) == BATCH_SIZE
    assert synced.model_version is None
    project_id = client.get_or_create_project(
        settings.project_name, task_type.label_config(settings.labels)
    )
    assert all(t["data"]["image"] for t in project_tasks(settings, project_id))

    label_batch_with_oracle(client, settings, cloud=CLOUD, inference=synced, truth=truth)
    # The oracle's boxes come back from Label Studio as the same pixels. (Label Studio shows
    # the bucket's URIs in task data as its own resolve URLs: the key identifies the item.)
    prefix = settings.data_source(CLOUD).dataset_uri + "/"
    for task in project_tasks(settings, project_id):
        (annotation,) = task["annotations"]
        read = task_type.target_from_result(
            annotation["result"], task["data"]["key"], settings.labels, "test"
        )
        assert task_type.same_target(read, truth[task["data"]["key"]])

    use_train_config(monkeypatch, tmp_path, QUICK)
    trained = app.train(CLOUD, settings, rerun=True)
    assert trained.model_version == "1" and trained.promoted is True
    assert trained.metric == "map_50" and trained.labelled_items == BATCH_SIZE
    logged = Client().get_model_version(settings.model_name, "1").run_metadata["validation"]
    assert 0 <= logged["map"] <= logged["map_50"] <= 1 and logged["n_true"] > 0

    inferred = app.infer(CLOUD, settings, rerun=True)
    assert inferred.batch == "batch_2" and inferred.model_version is not None
    assert len(inferred.predictions) == BATCH_SIZE
    by_id = {t["id"]: t for t in project_tasks(settings, project_id)}
    boxes = 0
    for batch_task in inferred.tasks:
        task = by_id[batch_task.task_id]
        (prediction,) = pre_annotations(task)
        assert prediction["model_version"] == f"{settings.model_name}:1"
        assert 0 <= prediction["score"] <= 1
        for region in prediction["result"]:
            assert region["type"] == "rectanglelabels" and 0 < region["score"] <= 1
            assert region["value"]["rectanglelabels"][0] in settings.labels
            value = region["value"]
            assert value["x"] >= 0 and value["x"] + value["width"] <= 100 + 1e-9
            assert value["y"] >= 0 and value["y"] + value["height"] <= 100 + 1e-9
            boxes += 1
        predicted = inferred.predictions[batch_task.task_id]
        assert isinstance(predicted, ImageBoxes) and len(predicted.boxes) == len(
            prediction["result"]
        )
    assert boxes > 0, "the model pre-annotates boxes"

    report = label_batch_with_oracle(client, settings, CLOUD, inferred, truth)
    assert report.accepted + report.corrected == BATCH_SIZE
    assert report.predicted_units == boxes and 0 <= report.kept_units <= boxes

    out = tmp_path / "export"
    exported = export_snapshot(CLOUD, settings, out, with_images=True, say=print)
    assert exported.images == BATCH_SIZE and not exported.missing
    assert exported.boxes == sum(len(truth[t.uri.removeprefix(prefix)].boxes) for t in synced.tasks)
    coco_files = sorted((out / "annotations").glob("instances_*.json"))
    loaded = [COCO(str(path)) for path in coco_files]
    assert sum(len(coco.getImgIds()) for coco in loaded) == BATCH_SIZE
    assert sum(len(coco.getAnnIds()) for coco in loaded) == exported.boxes
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["nc"] == 10 and data["names"][3] == "3"
    images = sorted(p.relative_to(out / "images") for p in (out / "images").rglob("*.png"))
    labels = sorted(p.relative_to(out / "labels") for p in (out / "labels").rglob("*.txt"))
    assert [p.with_suffix("") for p in images] == [p.with_suffix("") for p in labels]
