"""COCO JSON and YOLO text files of annotated boxes: what other trainers read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pycocotools.coco import COCO

from annotation_loop.detection.boxes import Box
from annotation_loop.detection.export import (
    ExportImage,
    boxes_from_yolo,
    coco_dataset,
    write_coco,
    write_yolo,
    yolo_lines,
)

LABELS = ("0", "1", "seven")
IMAGES = [
    ExportImage(
        "batch_1/00000.png",
        "train",
        160,
        120,
        (Box("1", 0.0, 0.0, 20.0, 30.0), Box("seven", 140.5, 100.0, 160.0, 120.0)),
    ),
    ExportImage("batch_1/00001.png", "train", 97, 641, ()),
    ExportImage("batch_2/00000.png", "val", 112, 144, (Box("0", 10.25, 20.0, 50.0, 144.0),)),
]


def test_yolo_lines_are_normalised_centres_and_sizes_and_round_trip():
    (first, second) = yolo_lines(IMAGES[0], LABELS)
    assert first == "1 0.062500 0.125000 0.125000 0.250000"
    assert second.startswith("2 ")
    for image in IMAGES:
        back = boxes_from_yolo(yolo_lines(image, LABELS), image.width, image.height, LABELS)
        assert len(back) == len(image.boxes)
        for got, want in zip(back, image.boxes, strict=True):
            assert got.label == want.label
            for a, b in ((got.x0, want.x0), (got.x1, want.x1)):
                assert a == pytest.approx(b, abs=1e-6 * image.width)
            for a, b in ((got.y0, want.y0), (got.y1, want.y1)):
                assert a == pytest.approx(b, abs=1e-6 * image.height)


def test_coco_boxes_are_top_left_width_height_with_categories_from_one():
    dataset = coco_dataset(IMAGES, LABELS)
    assert dataset["categories"] == [
        {"id": 1, "name": "0"},
        {"id": 2, "name": "1"},
        {"id": 3, "name": "seven"},
    ]
    first = dataset["annotations"][1]
    assert first["bbox"] == [140.5, 100.0, 19.5, 20.0] and first["category_id"] == 3
    assert first["area"] == 19.5 * 20.0 and first["image_id"] == 1
    assert [image["width"] for image in dataset["images"]] == [160, 97, 112]


def test_written_files_load_in_pycocotools_and_name_the_yolo_classes(tmp_path: Path):
    coco_files = write_coco(tmp_path, IMAGES, LABELS)
    assert [p.name for p in coco_files] == ["instances_train.json", "instances_val.json"]
    coco = COCO(str(coco_files[0]))
    assert len(coco.getImgIds()) == 2 and len(coco.getAnnIds()) == 2
    (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=[1], catIds=[2]))
    assert annotation["bbox"] == [0.0, 0.0, 20.0, 30.0]
    assert json.loads(coco_files[1].read_text())["images"][0]["file_name"] == "batch_2/00000.png"

    data = yaml.safe_load(write_yolo(tmp_path, IMAGES, LABELS).read_text())
    assert data == {
        "path": ".",
        "train": "images/train",
        "val": "images/val",
        "nc": 3,
        "names": {0: "0", 1: "1", 2: "seven"},
    }
    assert (tmp_path / "labels/train/batch_1/00001.txt").read_text() == "", "a negative image"
    lines = (tmp_path / "labels/val/batch_2/00000.txt").read_text().splitlines()
    (box,) = boxes_from_yolo(lines, 112, 144, LABELS)
    assert [round(v, 3) for v in (box.x0, box.y0, box.x1, box.y1)] == [10.25, 20.0, 50.0, 144.0]
    assert (tmp_path / "classes.txt").read_text() == "0\n1\nseven\n"


def test_exported_file_names_are_keys_under_the_dataset_and_never_leave_the_folder():
    from annotation_loop.app.export import _file_name

    prefix = "s3://bucket/boxes/"
    assert _file_name(3, "s3://bucket/boxes/batch_1/a.png", prefix) == "batch_1/a.png"
    assert _file_name(3, "s3://other/b.jpg", prefix) == "task_3.jpg"
    assert _file_name(4, "s3://bucket/boxes/../../etc/x.png", prefix) == "task_4.png"
