"""Object detection: labelled boxes on images (`RectangleLabels` over an `Image`), an FCOS
detector on the shipped EfficientNet-Lite0 backbone fine-tuned with torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from annotation_loop.data.storage import ObjectStore
from annotation_loop.detection.boxes import (
    RECTANGLE_REGION,
    Box,
    ImageBoxes,
    boxes_from_result,
    decode_boxes,
    encode_boxes,
    iou,
    kept_boxes,
    result_from_boxes,
    same_boxes,
)
from annotation_loop.detection.metrics import DetectionScores
from annotation_loop.detection.train_config import DetectionTrainConfig
from annotation_loop.errors import LoopError, UnknownLabelError
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    Prediction,
    TaskDefaults,
    TaskType,
)
from annotation_loop.task_types.capabilities import (
    DemoData,
    InteractivePrediction,
    LabelReview,
    LabelUnits,
)
from annotation_loop.task_types.choices import check_labels
from annotation_loop.task_types.image import TO_NAME, ImageFiles

# Label review's class for "no object here": the annotation has no box where the model
# sees one, or has a box where the model sees background.
NO_OBJECT = "(no object)"
# Candidates overlapping an annotated box less than this are regions the annotation says
# hold nothing; at most this many per image are checked, the most confident first.
UNANNOTATED_IOU = 0.3
UNANNOTATED_PER_IMAGE = 5
# An annotator's box the model answers for: its best candidate must overlap it this much.
REGION_MIN_IOU = 0.3


def _boxes(target: Any) -> ImageBoxes:
    if not isinstance(target, ImageBoxes):
        raise TypeError(f"A detection target is ImageBoxes, not {type(target).__name__}")
    return target


def _class_index(label: str, classes: tuple[str, ...], what: str) -> int:
    if label not in classes:
        raise UnknownLabelError(
            f"{what} is labelled {label!r}, which the detector does not find "
            f"({list(classes[1:])}): train a model on the current label list first"
        )
    return classes.index(label)


# Items are images in the bucket, listed and read as image classification does.


class ObjectDetection(ImageFiles, TaskType, LabelReview, DemoData, InteractivePrediction):
    """Images as image classification lists and reads them; boxes as targets."""

    name = "detection"
    description = "object detection"
    item_description = "JPEG/PNG images"
    items_in_bucket = True
    unit_name = "boxes"  # what the demo's oracle counts as kept (`dev.oracle.KeptUnits`)
    metrics_type = DetectionScores
    promotion_metric = "map_50"  # COCO mAP at IoU 0.5: forgiving of a pixel or two
    train_config_type = DetectionTrainConfig
    agreement_kind = "boxes"
    defaults = TaskDefaults(
        project_name="MNIST boxes",
        model_name="digit_detector",
        dataset="mnist_boxes",
        labels=tuple(str(digit) for digit in range(10)),
        # A detector trains at ~20 canvases/s on two CPU cores: 120 keep a round near 2 min.
        demo_batch_size=120,
    )

    # -- Label Studio ------------------------------------------------------------------
    def label_config(self, labels: Sequence[str]) -> str:
        check_labels(labels)
        options = "\n    ".join(f"<Label value={quoteattr(label)}/>" for label in labels)
        return (
            "<View>\n"
            f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
            f'  <RectangleLabels name="{self.from_name}" toName="{TO_NAME}">\n'
            f"    {options}\n"
            "  </RectangleLabels>\n"
            "</View>"
        )

    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> ImageBoxes:
        # No boxes is a label too: "nothing to detect in this image".
        return boxes_from_result(result, labels, self.from_name, where)

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return result_from_boxes(_boxes(target), self.from_name, TO_NAME)

    # -- storage -----------------------------------------------------------------------

    # -- snapshots ---------------------------------------------------------------------
    def encode_target(self, target: Any) -> Any:
        return encode_boxes(_boxes(target))

    def decode_target(self, encoded: Any) -> ImageBoxes:
        return decode_boxes(encoded)

    def labels_of(self, target: Any) -> list[str]:
        return _boxes(target).labels

    # -- the model ---------------------------------------------------------------------
    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        from annotation_loop.detection.detector import AnnotatedImage, train_detector

        checkpoint, report = train_detector(
            [AnnotatedImage(e.key, e.input, _boxes(e.target)) for e in examples],
            labels,
            self.train_config_type(**config),
            init=init,
        )
        summary = asdict(report)
        summary["skipped_keys"] = report.skipped_keys[:20]
        summary["items_per_second"] = summary.pop("images_per_second")
        return checkpoint, summary

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        from annotation_loop.detection.detector import predict_boxes

        predictions, corrupt = predict_boxes(model, inputs, batch_size=batch_size)
        return [
            Prediction(p.key, p.target, p.score, p.uncertainty, p.embedding) for p in predictions
        ], corrupt

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        """mAP over every candidate (the precision-recall curve needs the low scores too);
        `n_predicted` counts the boxes over the score threshold, as annotators get them."""
        from annotation_loop.detection.detector import predict_boxes
        from annotation_loop.detection.metrics import detection_scores, plot_class_ap

        by_key = {e.key: _boxes(e.target) for e in examples}
        predictions, _ = predict_boxes(model, [(e.key, e.input) for e in examples], progress=False)
        scores = detection_scores(
            [p.candidates for p in predictions],
            [by_key[p.key] for p in predictions],
            model.labels,
        )
        scores = scores.model_copy(
            update={"n_predicted": sum(len(p.target.boxes) for p in predictions)}
        )
        return Evaluation(scores, plot_class_ap(scores))

    # -- demo --------------------------------------------------------------------------
    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        from annotation_loop.detection.demo import seed_digit_canvases

        return dict(seed_digit_canvases(store, batches, batch_size, seed))

    def same_target(self, a: Any, b: Any) -> bool:
        """Boxes match one-to-one with IoU >= 0.9 and the same label."""
        return same_boxes(_boxes(a), _boxes(b))

    def kept_units(self, predicted: Any, truth: Any) -> tuple[int, int]:
        """(pre-annotated boxes kept unchanged, pre-annotated boxes)."""
        return kept_boxes(_boxes(predicted), _boxes(truth))

    # -- label review ------------------------------------------------------------------
    def label_units(
        self, model: Any, examples: Sequence[Example], batch_size: int = 64
    ) -> LabelUnits:
        """The annotated boxes (given: their labels), then the model's most confident
        candidates where the annotation has no box (given: NO_OBJECT), each with the
        pyramid's features over it: confident learning then flags a wrong class, a box on
        background, and an object left without a box."""
        from annotation_loop.detection.detector import image_tensor, region_features
        from annotation_loop.vision.images import CorruptImageError

        classes = (NO_OBJECT, *model.labels)
        features: list[np.ndarray] = []
        given: list[int] = []
        example_of: list[int] = []
        position: list[int] = []
        for index, example in enumerate(examples):
            target = _boxes(example.target)
            try:
                image = image_tensor(example.input, example.key)
            except CorruptImageError:
                continue
            units = self._review_boxes(model, image, target)
            if not units:
                continue
            features.append(region_features(model, image, units))
            given += [
                _class_index(box.label, classes, f"A box of {example.key}") for box in target.boxes
            ]
            given += [0] * (len(units) - len(target.boxes))
            example_of += [index] * len(units)
            position += range(len(units))
        if not features:
            return LabelUnits.empty(classes)
        return LabelUnits(
            features=np.concatenate(features),
            given=np.array(given, dtype=np.int64),
            example=np.array(example_of, dtype=np.int64),
            position=np.array(position, dtype=np.int64),
            classes=classes,
        )

    def _review_boxes(self, model: Any, image: Any, target: ImageBoxes) -> list[Box]:
        """The annotated boxes (in the annotation's pixels, scaled to the image's if it was
        drawn on another size), then the unannotated candidates."""
        from annotation_loop.detection.detector import candidate_boxes

        width, height = image.shape[2], image.shape[1]
        sx, sy = (
            (1.0, 1.0)
            if target.size is None
            else (
                width / target.size[0],
                height / target.size[1],
            )
        )
        annotated = [
            replace(b, x0=b.x0 * sx, y0=b.y0 * sy, x1=b.x1 * sx, y1=b.y1 * sy) for b in target.boxes
        ]
        unannotated = [
            box
            for box in sorted(candidate_boxes(model, image), key=lambda b: -(b.score or 0.0))
            if all(iou(box, a) < UNANNOTATED_IOU for a in annotated)
        ]
        return annotated + unannotated[:UNANNOTATED_PER_IMAGE]

    def suggest_target(
        self, model: Any, example: Example, suggestions: Mapping[int, str]
    ) -> ImageBoxes:
        """The annotation with the disputed boxes relabelled, the boxes the model sees as
        background removed, and the objects it finds where there was no box added."""
        from annotation_loop.detection.detector import image_tensor

        target = _boxes(example.target)
        classes = (NO_OBJECT, *model.labels)
        for label in suggestions.values():
            _class_index(label, classes, f"The suggestion for {example.key}")
        units = target.boxes
        size: tuple[int, int] | None = target.size
        scale = (1.0, 1.0)
        if any(position >= len(units) for position in suggestions):
            image = image_tensor(example.input, example.key)
            units = tuple(self._review_boxes(model, image, target))
            size = target.size or (image.shape[2], image.shape[1])
            scale = (size[0] / image.shape[2], size[1] / image.shape[1])
        boxes = []
        for position, box in enumerate(units):
            is_candidate = position >= len(target.boxes)
            if is_candidate and position not in suggestions:
                continue  # background, as annotated
            label = suggestions.get(position, box.label)
            if label == NO_OBJECT:
                continue
            if is_candidate:  # in the decoded image's pixels
                box = Box(
                    label,
                    box.x0 * scale[0],
                    box.y0 * scale[1],
                    box.x1 * scale[0],
                    box.y1 * scale[1],
                )
            boxes.append(replace(box, label=label, score=None))
        return ImageBoxes(size, tuple(boxes))

    # -- interactive -------------------------------------------------------------------
    def predict_region(
        self, model: Any, input: Any, region: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The annotator's box with the label of the model's best overlapping candidate
        (by IoU times score) and that candidate's score; None for a region that is not a
        box, or where the model sees nothing."""
        from annotation_loop.detection.detector import candidate_boxes, image_tensor

        if region.get("type") not in (RECTANGLE_REGION, "rectangle") or input is None:
            return None
        as_labelled = {
            **region,
            "type": RECTANGLE_REGION,
            "from_name": self.from_name,
            "value": {**region.get("value", {}), RECTANGLE_REGION: [model.labels[0]]},
        }
        try:
            (drawn,) = boxes_from_result([as_labelled], model.labels, self.from_name, "").boxes
            image = image_tensor(input, "the task's image")
        except (LoopError, ValueError):
            return None
        width, height = image.shape[2], image.shape[1]
        size = (int(region["original_width"]), int(region["original_height"]))
        sx, sy = width / size[0], height / size[1]
        drawn = replace(
            drawn, x0=drawn.x0 * sx, y0=drawn.y0 * sy, x1=drawn.x1 * sx, y1=drawn.y1 * sy
        )
        overlapping = [
            (iou(drawn, box), box) for box in candidate_boxes(model, image) if box.score is not None
        ]
        matches = [(o * (box.score or 0.0), box) for o, box in overlapping if o >= REGION_MIN_IOU]
        if not matches:
            return None
        _, best = max(matches, key=lambda match: match[0])
        value = {**region.get("value", {}), RECTANGLE_REGION: [best.label]}
        return {
            "from_name": self.from_name,
            "to_name": TO_NAME,
            "type": RECTANGLE_REGION,
            "original_width": size[0],
            "original_height": size[1],
            "image_rotation": 0,
            "value": value,
            "score": best.score,
        }
