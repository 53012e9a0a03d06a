"""Boxes on an image, in pixels, and their Label Studio form (percent of the image).

Label Studio stores a `rectanglelabels` region as x/y/width/height in percent of the image
it was drawn on, with that image's `original_width`/`original_height`; the model and the
export formats work in pixels of the original image. A target therefore carries its image's
size, so that a pre-annotation is written back in percent without decoding the image again.
Pixel coordinates are rounded to `PIXEL_DECIMALS` after conversion, so that a box with such
coordinates survives pixels -> percent -> pixels unchanged, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from annotation_loop.errors import LoopError, UnknownLabelError

# Label Studio's region type for `<RectangleLabels>`.
RECTANGLE_REGION = "rectanglelabels"
PIXEL_DECIMALS = 6
# How close a pre-annotated box must stay to count as kept unchanged (and targets the same).
SAME_BOX_IOU = 0.9


class BoxError(LoopError):
    """A box in an annotation that cannot be used."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the original image: x0 < x1, y0 < y1."""

    label: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float | None = None  # the model's confidence, for predicted boxes

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


@dataclass(frozen=True)
class ImageBoxes:
    """A detection target: the boxes on one image, and the image's size (width, height).

    The size is None only for an annotation without boxes ("nothing to detect here"), whose
    Label Studio result carries no size.
    """

    size: tuple[int, int] | None
    boxes: tuple[Box, ...] = ()

    @property
    def labels(self) -> list[str]:
        return [box.label for box in self.boxes]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 for disjoint or empty ones)."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.area + b.area - inter)


def matched_boxes(
    predicted: Sequence[Box], truth: Sequence[Box], min_iou: float = SAME_BOX_IOU
) -> list[tuple[int, int]]:
    """(predicted index, true index) pairs, one-to-one, of boxes with the same label and an
    IoU of at least `min_iou`, the closest pairs first (greedy: with `min_iou` >= 0.5 a box
    can overlap that much with at most one box of a set whose boxes barely overlap)."""
    pairs = sorted(
        (
            (iou(p, t), i, j)
            for i, p in enumerate(predicted)
            for j, t in enumerate(truth)
            if p.label == t.label
        ),
        reverse=True,
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for overlap, i, j in pairs:
        if overlap < min_iou:
            break
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            matches.append((i, j))
    return matches


def kept_boxes(predicted: ImageBoxes, truth: ImageBoxes) -> tuple[int, int]:
    """(pre-annotated boxes an annotator keeps unchanged, pre-annotated boxes): a box is kept
    when a true box of its label overlaps it with IoU >= SAME_BOX_IOU."""
    return len(matched_boxes(predicted.boxes, truth.boxes)), len(predicted.boxes)


def same_boxes(a: ImageBoxes, b: ImageBoxes) -> bool:
    """Whether every box of `a` matches one of `b` (IoU >= SAME_BOX_IOU, same label), and
    back."""
    return len(a.boxes) == len(b.boxes) == len(matched_boxes(a.boxes, b.boxes))


def _pixels(percent: float, extent: int) -> float:
    return round(min(max(percent * extent / 100.0, 0.0), float(extent)), PIXEL_DECIMALS)


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BoxError(f"A box of {where} has {what} {value!r}, not a number")
    return float(value)


def _size(region: dict[str, Any], where: str) -> tuple[int, int]:
    width, height = region.get("original_width"), region.get("original_height")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise BoxError(
            f"A box of {where} has no original_width/original_height (got {width!r}, "
            f"{height!r}): redraw it in Label Studio"
        )
    return width, height


def _box(region: dict[str, Any], size: tuple[int, int], labels: Sequence[str], where: str) -> Box:
    value = region["value"]
    names = value.get(RECTANGLE_REGION)
    if not (isinstance(names, list) and len(names) == 1 and isinstance(names[0], str)):
        raise BoxError(f"A box of {where} has labels {names!r}, not one label name")
    label = names[0]
    if label not in labels:
        raise UnknownLabelError(
            f"Label {label!r} of {where} is not in the label list {list(labels)}: fix the "
            "annotation in Label Studio or add the label to LOOP_LABELS"
        )
    if _number(value.get("rotation", 0), "rotation", where) % 360 != 0:
        raise BoxError(
            f"A {label} box of {where} is rotated by {value['rotation']} degrees: the detector "
            "takes axis-aligned boxes only, redraw it without rotation"
        )
    x, y = _number(value.get("x"), "x", where), _number(value.get("y"), "y", where)
    width = _number(value.get("width"), "width", where)
    height = _number(value.get("height"), "height", where)
    image_width, image_height = size
    box = Box(
        label,
        _pixels(x, image_width),
        _pixels(y, image_height),
        _pixels(x + width, image_width),
        _pixels(y + height, image_height),
        _number(region["score"], "score", where) if region.get("score") is not None else None,
    )
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        raise BoxError(
            f"A {label} box of {where} at x={x}%, y={y}% has no area inside the "
            f"{image_width}x{image_height} image: delete or redraw it in Label Studio"
        )
    return box


def boxes_from_result(
    result: Iterable[dict[str, Any]], labels: Sequence[str], from_name: str, where: str
) -> ImageBoxes:
    """The boxes of a Label Studio result's `rectanglelabels` regions of `from_name`.

    Raises `BoxError` for a box without the image's size, rotated, or with no area inside the
    image, and `UnknownLabelError` for a label outside `labels`.
    """
    size: tuple[int, int] | None = None
    boxes = []
    for region in result:
        if region.get("from_name") != from_name or region.get("type") != RECTANGLE_REGION:
            continue
        region_size = _size(region, where)
        if size is not None and region_size != size:
            raise BoxError(
                f"The boxes of {where} were drawn on images of different sizes ({size} and "
                f"{region_size}): redraw them in Label Studio"
            )
        size = region_size
        boxes.append(_box(region, region_size, labels, where))
    return ImageBoxes(size, tuple(boxes))


def result_from_boxes(target: ImageBoxes, from_name: str, to_name: str) -> list[dict[str, Any]]:
    """The Label Studio regions of `target`'s boxes, in percent, with their scores if any."""
    if not target.boxes:
        return []
    if target.size is None:
        raise ValueError("Boxes without their image's size cannot be put in percent")
    width, height = target.size
    regions = []
    for box in target.boxes:
        region: dict[str, Any] = {
            "from_name": from_name,
            "to_name": to_name,
            "type": RECTANGLE_REGION,
            "original_width": width,
            "original_height": height,
            "image_rotation": 0,
            "value": {
                "x": box.x0 * 100.0 / width,
                "y": box.y0 * 100.0 / height,
                "width": (box.x1 - box.x0) * 100.0 / width,
                "height": (box.y1 - box.y0) * 100.0 / height,
                "rotation": 0,
                RECTANGLE_REGION: [box.label],
            },
        }
        if box.score is not None:
            region["score"] = box.score
        regions.append(region)
    return regions


def encode_boxes(target: ImageBoxes) -> dict[str, Any]:
    """A JSON-able form: {"size": [w, h] | None, "boxes": [[label, x0, y0, x1, y1(, score)]]}."""
    return {
        "size": None if target.size is None else list(target.size),
        "boxes": [
            [b.label, b.x0, b.y0, b.x1, b.y1, *([] if b.score is None else [b.score])]
            for b in target.boxes
        ],
    }


def decode_boxes(encoded: dict[str, Any]) -> ImageBoxes:
    size = encoded["size"]
    boxes = tuple(
        Box(
            str(row[0]),
            float(row[1]),
            float(row[2]),
            float(row[3]),
            float(row[4]),
            float(row[5]) if len(row) > 5 else None,
        )
        for row in encoded["boxes"]
    )
    return ImageBoxes(None if size is None else (int(size[0]), int(size[1])), boxes)
