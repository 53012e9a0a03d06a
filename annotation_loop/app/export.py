"""`run.py export`: the latest training snapshot of a detection project, as COCO and YOLO
datasets (with the images, unless told not to), so that a team can train elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from annotation_loop.errors import ConfigurationError, LoopError
from annotation_loop.settings import Settings


@dataclass(frozen=True)
class ExportReport:
    images: int
    boxes: int
    written: list[Path]  # the annotation files, and the image folder if images were copied
    missing: list[str] = field(default_factory=list)  # images gone from the bucket: left out


def _file_name(task_id: int, uri: str, dataset_prefix: str) -> str:
    """The image's path in the export: its key under the dataset ("batch_1/00001.png"), or
    "task_<id>.<suffix>" for an image elsewhere or a key that would leave the folder."""
    key = uri.removeprefix(dataset_prefix)
    parts = PurePosixPath(key).parts
    if key == uri or not parts or ".." in parts or PurePosixPath(key).is_absolute():
        return f"task_{task_id}{PurePosixPath(uri).suffix}"
    return key


def export_snapshot(
    cloud: str, settings: Settings, out: Path, with_images: bool, say: Callable[[str], None]
) -> ExportReport:
    """Writes the snapshot of the model's newest trained version into `out`: `images/<split>/`,
    `labels/<split>/` and `data.yaml` (YOLO), `annotations/instances_<split>.json` (COCO);
    the train/val split is the loop's own (the training config's validation_fraction)."""
    from annotation_loop.app.environment import prepare_stack
    from annotation_loop.configs import load_training_parameters
    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.detection.boxes import ImageBoxes
    from annotation_loop.detection.export import ExportImage, write_coco, write_yolo
    from annotation_loop.task_types import get_task_type
    from annotation_loop.vision.images import CorruptImageError, decode_image
    from annotation_loop.zenml_integration.model_registry import latest_snapshot

    task_type = get_task_type(settings.task)
    if settings.task != "detection":
        raise ConfigurationError(
            f"run.py export writes boxes (COCO, YOLO); the task type is {settings.task!r}: "
            "set LOOP_TASK=detection (or --task detection)"
        )
    prepare_stack(cloud, settings)
    snapshot = latest_snapshot(settings.model_name)
    if snapshot is None or snapshot.task != settings.task:
        raise LoopError(
            f"No trained version of {settings.model_name!r} holds a detection snapshot: "
            f"run `python run.py {cloud} --train --task detection` first"
        )
    train, validation = snapshot.split(load_training_parameters(settings.task).validation_fraction)
    store = ObjectStore(settings.data_source(cloud))
    prefix = store.source.dataset_uri + "/"
    items = [(item, "train") for item in train] + [(item, "val") for item in validation]
    names = {
        str(item.task_id): _file_name(item.task_id, item.input_ref, prefix) for item, _ in items
    }
    split_of = {str(item.task_id): split for item, split in items}
    sizes: dict[str, tuple[int, int]] = {}
    missing: list[str] = []
    refs = [(str(item.task_id), item.input_ref) for item, _ in items]
    say(f"Exporting {len(items)} annotated images of {settings.model_name!r} to {out}")
    # The bytes are read when they are copied, or to learn the size of an image whose
    # annotation has no box (its result carries no size).
    needed = [
        ref
        for ref, (item, _) in zip(refs, items, strict=True)
        if with_images or not item.target.size
    ]
    unsized = {str(item.task_id) for item, _ in items if item.target.size is None}
    for key, data in task_type.load_inputs(store, needed):
        if data is None:
            missing.append(names[key])
            continue
        if key in unsized:
            try:
                sizes[key] = decode_image(data, names[key]).size
            except CorruptImageError:
                missing.append(names[key])
                continue
        if with_images:
            path = out / "images" / split_of[key] / names[key]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    exported = []
    for item, split in items:
        key = str(item.task_id)
        target: ImageBoxes = item.target
        size = target.size or sizes.get(key)
        if size is None or names[key] in missing:
            continue
        exported.append(ExportImage(names[key], split, size[0], size[1], target.boxes))
    written = [
        *write_coco(out, exported, snapshot.labels),
        write_yolo(out, exported, snapshot.labels),
    ]
    if with_images:
        written.append(out / "images")
    return ExportReport(
        images=len(exported),
        boxes=sum(len(image.boxes) for image in exported),
        written=written,
        missing=missing,
    )
