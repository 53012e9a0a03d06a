"""The detection task type as the loop sees it: registry, configs, label config, demo data,
snapshots, and the oracle's count of kept boxes."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from PIL import Image

from annotation_loop.configs import (
    InferenceParameters,
    config_path,
    load_parameters,
    load_training_parameters,
)
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.detection.train_config import DetectionTrainConfig
from annotation_loop.dev.demo_report import RoundRow, accepted_title, round_table
from annotation_loop.dev.oracle import OracleTask, label_with_truth, unit_name
from annotation_loop.task_types import (
    DemoData,
    LabelReview,
    demo_data_of,
    get_task_type,
)
from annotation_loop.task_types.capabilities import InteractivePrediction

detection = get_task_type("detection")


def test_it_is_registered_with_its_capabilities_and_configs():
    assert type(detection).__name__ == "ObjectDetection"
    assert isinstance(detection, DemoData) and isinstance(detection, LabelReview)
    assert isinstance(detection, InteractivePrediction)
    assert detection.promotion_metric == "map_50" and detection.items_in_bucket
    assert detection.defaults.model_name == "digit_detector"
    training = load_training_parameters("detection")
    assert training.model.name == "digit_detector"
    DetectionTrainConfig(**training.train_config)
    load_parameters(config_path("detection", "inference"), InferenceParameters)


def test_the_label_config_is_rectangles_over_the_image():
    root = ET.fromstring(detection.label_config(["0", "a&b"]))
    image, rectangles = root
    assert (image.tag, image.get("name"), image.get("value")) == ("Image", "image", "$image")
    assert rectangles.tag == "RectangleLabels" and rectangles.get("toName") == "image"
    assert [label.get("value") for label in rectangles] == ["0", "a&b"]


def test_targets_survive_the_snapshot_encoding():
    target = ImageBoxes((160, 120), (Box("3", 0, 0, 10.5, 20), Box("7", 150, 100, 160, 120)))
    assert detection.decode_target(detection.encode_target(target)) == target
    assert detection.labels_of(target) == ["3", "7"]


def test_demo_canvases_are_non_square_pngs_with_tight_boxes(tmp_path: Path):
    store = ObjectStore(DataSource(root_uri=str(tmp_path), dataset="boxes"))
    truth = demo_data_of(detection).seed_demo(store, batches=2, batch_size=3, seed=0)
    assert sorted(truth) == [f"batch_{b}/{i:05d}.png" for b in (1, 2) for i in range(3)]
    for key, target in truth.items():
        image = Image.open(io.BytesIO((tmp_path / "boxes" / key).read_bytes()))
        assert image.size == target.size and image.size[0] != image.size[1]
        assert 1 <= len(target.boxes) <= 4 and all(b.label.isdigit() for b in target.boxes)
        pixels = image.load()
        for box in target.boxes:
            assert 0 <= box.x0 < box.x1 <= image.size[0] and 0 <= box.y0 < box.y1 <= image.size[1]
            inside = [pixels[x, int(box.y0)] for x in range(int(box.x0), int(box.x1))]
            assert max(inside) > 0, "the box's top row touches the digit's ink"
    again = demo_data_of(detection).seed_demo(store, batches=2, batch_size=3, seed=0)
    assert again == truth, "an existing batch is described again, not rewritten"


class RecordingClient:
    """Takes the oracle's annotations (the integration test sends them to Label Studio)."""

    def __init__(self) -> None:
        self.annotations: dict[int, list[dict[str, Any]]] = {}

    def ensure_user(self, email: str, username: str) -> int:
        return 1

    def annotator_ids(self, task_id: int) -> set[int]:
        return set()

    def create_annotation(
        self, task_id: int, result: list[dict[str, Any]], completed_by: int | None = None
    ) -> None:
        self.annotations[task_id] = result


def test_the_oracle_counts_kept_boxes_not_whole_images():
    truth = {
        "a.png": ImageBoxes((100, 50), (Box("1", 0, 0, 20, 20), Box("2", 50, 10, 70, 40))),
        "b.png": ImageBoxes((100, 50), (Box("3", 5, 5, 25, 45),)),
    }
    predicted = {
        "a.png": ImageBoxes((100, 50), (Box("1", 0, 0, 20, 20, 0.9), Box("5", 50, 10, 70, 40))),
        "b.png": ImageBoxes((100, 50), (Box("3", 5, 5, 25, 45, 0.8),)),
    }
    tasks = [OracleTask(i, key, f"/d/{key}", predicted[key]) for i, key in enumerate(truth)]
    client = RecordingClient()
    report = label_with_truth(client, detection, tasks, truth)  # type: ignore[arg-type]
    assert (report.accepted, report.corrected) == (1, 1), "images"
    assert (report.kept_units, report.predicted_units) == (2, 3), "boxes"
    assert report.acceptance_rate == 2 / 3
    assert len(client.annotations[0]) == 2 and client.annotations[0][0]["type"] == "rectanglelabels"
    assert unit_name(detection) == "boxes" and unit_name(get_task_type("image")) == "items"


def test_the_round_table_names_what_was_kept():
    rows = [RoundRow("batch_1 labelled, train --rerun", 16, "1", 0.5, True, 2 / 3)]
    table = round_table(rows, "val. map_50", accepted_title("boxes"))
    assert "boxes kept" in table.splitlines()[0] and "66.7%" in table
    assert accepted_title("items") == "accepted"
    assert round_table(rows, "val. accuracy").splitlines()[0].endswith("accepted")
