"""Boxes in pixels <-> Label Studio's percent regions, exactly, on non-square images."""

from __future__ import annotations

import json

import pytest

from annotation_loop.detection.boxes import (
    Box,
    BoxError,
    ImageBoxes,
    boxes_from_result,
    decode_boxes,
    encode_boxes,
    kept_boxes,
    result_from_boxes,
    same_boxes,
)
from annotation_loop.errors import UnknownLabelError

LABELS = ("cat", "dog")


def read(result: list[dict], labels: tuple[str, ...] = LABELS) -> ImageBoxes:
    return boxes_from_result(result, labels, "label", "task 7")


@pytest.mark.parametrize("size", [(160, 120), (97, 641), (3000, 7)])
def test_boxes_touching_the_edges_of_non_square_images_round_trip_exactly(size):
    """Exact for pixel coordinates of up to PIXEL_DECIMALS decimals, as annotations are."""
    width, height = size
    target = ImageBoxes(
        size,
        (
            Box("cat", 0.0, 0.0, float(width), float(height)),  # the whole image
            Box("dog", 0.0, round(height / 3, 6), 1.0, float(height)),  # left, bottom edges
            Box("cat", width - 1.5, 0.25, float(width), 2.0),  # right and top edges
        ),
    )
    result = result_from_boxes(target, "label", "image")
    assert read(result) == target, "bit for bit, edges included"
    assert read(json.loads(json.dumps(result))) == target, "through JSON, as Label Studio keeps it"
    whole = result[0]["value"]
    assert (whole["x"], whole["y"], whole["width"], whole["height"]) == (0.0, 0.0, 100.0, 100.0)
    assert all(r["original_width"] == width and r["original_height"] == height for r in result)


def test_percent_regions_become_pixels_of_the_original_image():
    region = {
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 50,
        "value": {
            "x": 10,
            "y": 20,
            "width": 50,
            "height": 80,
            "rotation": 0,
            "rectanglelabels": ["dog"],
        },
    }
    assert read([region]) == ImageBoxes((200, 50), (Box("dog", 20.0, 10.0, 120.0, 50.0),))
    # Drawn past the edge (Label Studio lets a box be dragged out): clipped to the image.
    region["value"].update(x=90, width=30)
    assert read([region]).boxes[0].x1 == 200.0


def test_scores_go_to_regions_and_come_back():
    target = ImageBoxes((64, 32), (Box("cat", 1, 2, 30, 31, score=0.75),))
    (region,) = result_from_boxes(target, "label", "image")
    assert region["score"] == 0.75 and region["value"]["rotation"] == 0
    assert read([region]) == target


def test_no_boxes_is_a_label_without_a_size():
    assert read([]) == ImageBoxes(None, ())
    assert result_from_boxes(ImageBoxes(None), "label", "image") == []


def test_other_controls_are_ignored():
    other = {"from_name": "caption", "type": "textarea", "value": {"text": ["hi"]}}
    assert read([other]) == ImageBoxes(None, ())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rotation": 30}, "rotated by 30 degrees"),
        ({"width": 0}, "has no area inside the 200x50 image"),
        ({"x": 120}, "has no area inside"),
        ({"rectanglelabels": []}, "not one label name"),
        ({"x": "10"}, "not a number"),
    ],
)
def test_unusable_boxes_are_refused_in_one_line(change, message):
    value = {"x": 10, "y": 10, "width": 10, "height": 10, "rectanglelabels": ["cat"]}
    region = {
        "from_name": "label",
        "type": "rectanglelabels",
        "original_width": 200,
        "original_height": 50,
        "value": {**value, **change},
    }
    with pytest.raises(BoxError, match=message) as error:
        read([region])
    assert "task 7" in str(error.value) and "\n" not in str(error.value)


def test_a_box_without_the_image_size_or_with_an_unknown_label_is_refused():
    region = {
        "from_name": "label",
        "type": "rectanglelabels",
        "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["cat"]},
    }
    with pytest.raises(BoxError, match="no original_width/original_height"):
        read([region])
    region.update(original_width=10, original_height=10)
    with pytest.raises(UnknownLabelError, match="'cat' of task 7 is not in the label list"):
        read([region], labels=("dog",))


def test_targets_encode_to_json_and_back():
    target = ImageBoxes((30, 40), (Box("cat", 1.5, 2, 3, 4), Box("dog", 0, 0, 30, 40, 0.5)))
    encoded = json.loads(json.dumps(encode_boxes(target)))
    assert decode_boxes(encoded) == target
    assert decode_boxes(encode_boxes(ImageBoxes(None))) == ImageBoxes(None)


def test_kept_boxes_match_one_to_one_with_iou_090_and_the_same_label():
    truth = ImageBoxes((100, 100), (Box("cat", 0, 0, 20, 20), Box("dog", 50, 50, 80, 80)))
    near = Box("cat", 0, 0, 20, 21)  # IoU 20/21 = 0.95
    loose = Box("dog", 50, 50, 80, 84)  # IoU 30/34 = 0.88
    assert kept_boxes(ImageBoxes((100, 100), (near, loose)), truth) == (1, 2)
    assert kept_boxes(ImageBoxes((100, 100), (near, near)), truth) == (1, 2), "one to one"
    relabelled = Box("cat", 50, 50, 80, 80)
    assert kept_boxes(ImageBoxes((100, 100), (relabelled,)), truth) == (0, 1)
    assert same_boxes(ImageBoxes((100, 100), (near, Box("dog", 50, 50, 80, 81))), truth)
    assert not same_boxes(ImageBoxes((100, 100), (near,)), truth), "a box is missing"
