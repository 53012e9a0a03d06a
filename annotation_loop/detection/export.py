"""Annotated boxes in the formats other trainers read: COCO JSON and YOLO text files.

COCO: one JSON per split with `images`, `annotations` (bbox = [x, y, width, height] in
pixels, from the top-left corner) and `categories` (ids from 1, in label-list order).
YOLO: one `labels/<split>/<image path>.txt` per image, a line per box,
`class x_center y_center width height` normalised to [0, 1] by the image's size, with
`data.yaml` naming the classes (ids from 0) and the image folders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from annotation_loop.detection.boxes import PIXEL_DECIMALS, Box

SPLITS = ("train", "val")
YOLO_DECIMALS = 6


@dataclass(frozen=True)
class ExportImage:
    file_name: str  # the image's path under the split's image folder: "batch_1/00001.png"
    split: str  # "train" or "val"
    width: int
    height: int
    boxes: tuple[Box, ...]


def coco_dataset(images: Sequence[ExportImage], labels: Sequence[str]) -> dict[str, Any]:
    """A COCO detection dataset of `images` (all of them, whatever their split)."""
    category = {label: i + 1 for i, label in enumerate(labels)}
    annotations: list[dict[str, Any]] = []
    for image_id, image in enumerate(images, start=1):
        for box in image.boxes:
            width, height = box.x1 - box.x0, box.y1 - box.y0
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[box.label],
                    "bbox": [box.x0, box.y0, width, height],
                    "area": width * height,
                    "iscrowd": 0,
                }
            )
    return {
        "images": [
            {"id": i, "file_name": image.file_name, "width": image.width, "height": image.height}
            for i, image in enumerate(images, start=1)
        ],
        "annotations": annotations,
        "categories": [{"id": category[label], "name": label} for label in labels],
    }


def yolo_lines(image: ExportImage, labels: Sequence[str]) -> list[str]:
    """`class x_center y_center width height`, normalised by the image's size."""
    index = {label: i for i, label in enumerate(labels)}
    lines = []
    for box in image.boxes:
        values = (
            (box.x0 + box.x1) / 2 / image.width,
            (box.y0 + box.y1) / 2 / image.height,
            (box.x1 - box.x0) / image.width,
            (box.y1 - box.y0) / image.height,
        )
        lines.append(" ".join([str(index[box.label]), *(f"{v:.{YOLO_DECIMALS}f}" for v in values)]))
    return lines


def boxes_from_yolo(
    lines: Sequence[str], width: int, height: int, labels: Sequence[str]
) -> tuple[Box, ...]:
    """The boxes of a YOLO label file, in pixels (YOLO keeps YOLO_DECIMALS decimals of the
    image's size, so a box comes back within 10**-YOLO_DECIMALS * size of where it was)."""
    boxes = []
    for line in lines:
        class_id, cx, cy, w, h = line.split()
        x_center, y_center = float(cx) * width, float(cy) * height
        half_w, half_h = float(w) * width / 2, float(h) * height / 2
        boxes.append(
            Box(
                labels[int(class_id)],
                round(x_center - half_w, PIXEL_DECIMALS),
                round(y_center - half_h, PIXEL_DECIMALS),
                round(x_center + half_w, PIXEL_DECIMALS),
                round(y_center + half_h, PIXEL_DECIMALS),
            )
        )
    return tuple(boxes)


def label_file(file_name: str) -> PurePosixPath:
    """The YOLO label file of an image: its path with `.txt` for its suffix."""
    return PurePosixPath(file_name).with_suffix(".txt")


def write_coco(folder: Path, images: Sequence[ExportImage], labels: Sequence[str]) -> list[Path]:
    """`folder/annotations/instances_<split>.json` for each split with images."""
    written = []
    for split in SPLITS:
        chosen = [image for image in images if image.split == split]
        if not chosen:
            continue
        path = folder / "annotations" / f"instances_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(coco_dataset(chosen, labels), indent=1))
        written.append(path)
    return written


def write_yolo(folder: Path, images: Sequence[ExportImage], labels: Sequence[str]) -> Path:
    """`folder/labels/<split>/...txt` for every image (empty for an image without boxes, which
    YOLO trainers read as a negative) and `folder/data.yaml`; returns the latter."""
    for image in images:
        path = folder / "labels" / image.split / label_file(image.file_name)
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = yolo_lines(image, labels)
        path.write_text("".join(f"{line}\n" for line in lines))
    splits = {image.split for image in images}
    data = {
        "path": ".",
        **{split: f"images/{split}" for split in SPLITS if split in splits},
        "nc": len(labels),
        "names": dict(enumerate(labels)),
    }
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    (folder / "classes.txt").write_text("".join(f"{label}\n" for label in labels))
    return path
