"""Precision and recall of the label-review queue (issue 19): known label noise injected into
the demo datasets, reviewed as the training pipeline's `review_labels` step reviews them.

    make bench-labels                        # label efficiency, then this: 2-3 minutes
    make bench-labels REVIEW_ARGS="--image-tasks 1000 --image-seeds 3"
    python -m benchmarks.review_precision --dataset text --text-model pretrained
    python -m benchmarks.review_precision --dataset ner     # 10-15 minutes on 2 cores

Per task type and noise rate, `tasks` labelled demo items are drawn, a `rate` share of them
gets a wrong label from `annotation_loop.dev.label_noise.wrong_target` (another label,
uniformly, as a careless annotator errs), and `disputed_units`, the review the step runs,
judges them on the features the step's model gives them:

- image: the demo trains the head only (`freeze_backbone`), so its features are the
  pretrained backbone's: benchmarks.label_efficiency's EfficientNet-Lite0 embeddings of the
  MNIST digits (cached under .loop/bench-cache/). Cheap: `--image-seeds` draws per rate.
- text: the step reviews with the MiniLM fine-tuned on the noisy labels, so this fine-tunes
  it too (configs/text/training.yaml's train_config, on the items `train_model` would train
  on), one draw per rate: about a minute each on 2 cores. `--text-model pretrained` reviews
  with the pretrained encoder's mean-pooled features instead (seconds; not what the step
  sees).
- ner (only when asked for: several minutes a rate): WNUT-16 tweets, one span of a noisy
  tweet given another entity type; the tagger fine-tuned as for text
  (configs/ner/training.yaml). A tweet is flagged when any of its words is; a tweet
  without entities cannot be made noisy, so `noisy` counts the tweets whose label changed.

A flagged task is a true positive when its label is one of the injected errors. Prints per
task type and rate: tasks, noisy, flagged, precision (of the flagged, the share noisy) and
recall (of the noisy, the share flagged), summed over draws; writes them to
benchmarks/results/review_precision.json.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import click
import numpy as np
from threadpoolctl import threadpool_limits

from annotation_loop.configs import load_training_parameters
from annotation_loop.dev.label_noise import wrong_target
from annotation_loop.learning.annotations import in_validation
from annotation_loop.learning.label_review import ReviewConfig, disputed_units
from annotation_loop.task_types import (
    Example,
    LabelUnits,
    TaskType,
    get_task_type,
    label_review_of,
)
from annotation_loop.text.datasets import REVIEW_LABELS, rotten_tomatoes, wnut16
from benchmarks.figures import machine
from benchmarks.label_efficiency import RESULTS, _review_features, embedded_items

# benchmarks.label_efficiency's default pool and test set: its cache serves both.
EMBEDDED = (3000, 1000)


@dataclass(frozen=True)
class Outcome:
    task: str
    rate: float
    draws: int
    tasks: int
    noisy: int
    flagged: int
    caught: int  # flagged and noisy

    @property
    def precision(self) -> float | None:
        return self.caught / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.noisy if self.noisy else None


def noisy_targets(
    task_type: TaskType, truth: Sequence[Any], labels: Sequence[str], rate: float, seed: int
) -> tuple[list[Any], np.ndarray]:
    """(given targets, which are wrong): `rate` of `truth`, drawn at random, made wrong."""
    rng = random.Random(seed)
    wrong = np.zeros(len(truth), dtype=bool)
    wrong[rng.sample(range(len(truth)), round(rate * len(truth)))] = True
    given = [
        wrong_target(task_type, target, labels, rng) if spoilt else target
        for target, spoilt in zip(truth, wrong, strict=True)
    ]
    return given, wrong


def flagged_examples(units: LabelUnits, examples: int, config: ReviewConfig) -> np.ndarray:
    """Per example, whether the step's review would put it in the review tab."""
    flagged = np.zeros(examples, dtype=bool)
    found = disputed_units(units, (), config)
    if found is not None:
        flagged[[int(units.example[issue.unit]) for issue in found.issues]] = True
    return flagged


def review_images(tasks: int, rate: float, seeds: int, config: ReviewConfig) -> Outcome:
    if not load_training_parameters("image").train_config.get("freeze_backbone", True):
        raise click.UsageError(
            "configs/image/training.yaml fine-tunes the backbone: the step's features are no "
            "longer the pretrained ones this benchmark reviews with"
        )
    task_type = get_task_type("image")
    labels = task_type.defaults.labels
    features, digits = embedded_items("image", *EMBEDDED)
    pool = EMBEDDED[0]
    noisy = flagged = caught = 0
    for seed in range(seeds):
        chosen = np.random.default_rng(seed).choice(pool, tasks, replace=False)
        given, wrong = noisy_targets(
            task_type, [labels[d] for d in digits[chosen]], labels, rate, seed
        )
        units = LabelUnits(
            # As the step gets them: the image model's predictions carry float16 embeddings.
            features=features[chosen].astype(np.float16).astype(np.float32),
            given=np.array([labels.index(label) for label in given]),
            example=np.arange(tasks),
            position=np.zeros(tasks, dtype=np.int64),
            classes=tuple(labels),
        )
        found = flagged_examples(units, tasks, config)
        noisy, flagged, caught = (
            noisy + int(wrong.sum()),
            flagged + int(found.sum()),
            caught + int((found & wrong).sum()),
        )
    return Outcome("image", rate, seeds, seeds * tasks, noisy, flagged, caught)


def _pretrained_text_units(texts: Sequence[str], given: Sequence[str]) -> LabelUnits:
    return LabelUnits(
        features=_review_features(texts).astype(np.float16).astype(np.float32),
        given=np.array([REVIEW_LABELS.index(label) for label in given]),
        example=np.arange(len(texts)),
        position=np.zeros(len(texts), dtype=np.int64),
        classes=REVIEW_LABELS,
    )


def _fine_tuned_units(
    task_type: TaskType, texts: Sequence[str], given: Sequence[Any], labels: Sequence[str]
) -> LabelUnits:
    """What the step sees: the task type's model fine-tuned, as `train_model` trains it, on
    the items outside the validation split, then asked for every item's features."""
    parameters = load_training_parameters(task_type.name)
    examples = [
        Example(str(i), text, target)
        for i, (text, target) in enumerate(zip(texts, given, strict=True))
    ]
    training = [
        example
        for example in examples
        if not in_validation(
            hashlib.sha256(example.input.encode()).hexdigest(), parameters.validation_fraction
        )
    ]
    model, _ = task_type.train(training, labels, parameters.train_config, None)
    return label_review_of(task_type).label_units(model, examples)


def _outcome(
    task: str, rate: float, tasks: int, wrong: np.ndarray, units: LabelUnits, config: ReviewConfig
) -> Outcome:
    found = flagged_examples(units, tasks, config)
    return Outcome(
        task, rate, 1, tasks, int(wrong.sum()), int(found.sum()), int((found & wrong).sum())
    )


def review_texts(tasks: int, rate: float, model: str, config: ReviewConfig) -> Outcome:
    task_type = get_task_type("text")
    reviews = rotten_tomatoes()
    chosen = np.random.default_rng(0).choice(len(reviews), tasks, replace=False)
    texts = [reviews[i].text for i in chosen]
    given, wrong = noisy_targets(
        task_type, [reviews[i].label for i in chosen], REVIEW_LABELS, rate, seed=0
    )
    units = (
        _pretrained_text_units(texts, given)
        if model == "pretrained"
        else _fine_tuned_units(task_type, texts, given, REVIEW_LABELS)
    )
    return _outcome("text", rate, tasks, wrong, units, config)


def review_tweets(tasks: int, rate: float, config: ReviewConfig) -> Outcome:
    task_type = get_task_type("ner")
    tweets, types = wnut16()
    chosen = np.random.default_rng(0).choice(len(tweets), tasks, replace=False)
    truth = [tweets[i].spans for i in chosen]
    given, spoilt = noisy_targets(task_type, truth, types, rate, seed=0)
    # A tweet without entities is returned unchanged: only a changed label is noise.
    wrong = spoilt & np.array([g != t for g, t in zip(given, truth, strict=True)])
    units = _fine_tuned_units(task_type, [tweets[i].text for i in chosen], given, types)
    return _outcome("ner", rate, tasks, wrong, units, config)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def echo_table(outcomes: Sequence[Outcome]) -> None:
    header = (
        f"{'task type':10} {'noise':>6} {'draws':>6} {'tasks':>6} {'noisy':>6} {'flagged':>8} "
        f"{'flagged %':>10} {'precision':>10} {'recall':>7}"
    )
    click.echo(header + "\n" + "-" * len(header))
    for o in outcomes:
        click.echo(
            f"{o.task:10} {o.rate:6.0%} {o.draws:6d} {o.tasks:6d} {o.noisy:6d} {o.flagged:8d} "
            f"{o.flagged / o.tasks:10.1%} {_share(o.precision):>10} {_share(o.recall):>7}"
        )


def _rates(_ctx: click.Context, _param: click.Parameter, value: str) -> list[float]:
    try:
        rates = [float(rate) for rate in value.split(",") if rate.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of shares") from None
    if not rates or not all(0.0 <= rate < 1.0 for rate in rates):
        raise click.BadParameter(f"{value!r}: give shares in [0, 1), e.g. 0,0.05,0.1")
    return rates


@click.command()
@click.option(
    "--dataset",
    type=click.Choice(["image", "text", "ner"]),
    multiple=True,
    default=("image", "text"),
    show_default=True,
    help="Repeat for several; ner fine-tunes a tagger per rate (minutes each).",
)
@click.option("--rates", default="0,0.05,0.1", show_default=True, callback=_rates)
@click.option("--image-tasks", default=200, show_default=True, help="Labelled images a draw.")
@click.option("--image-seeds", default=10, show_default=True, help="Draws per noise rate.")
@click.option("--text-tasks", default=250, show_default=True, help="Labelled texts (one draw).")
@click.option("--ner-tasks", default=250, show_default=True, help="Labelled tweets (one draw).")
@click.option(
    "--text-model",
    type=click.Choice(["fine-tuned", "pretrained"]),
    default="fine-tuned",
    show_default=True,
    help="fine-tuned: as the step sees it; pretrained: frozen MiniLM features.",
)
@click.option(
    "--max-false-share",
    default=ReviewConfig().max_false_share,
    show_default=True,
    help="The review's label_review.max_false_share.",
)
def main(
    dataset: tuple[str, ...],
    rates: list[float],
    image_tasks: int,
    image_seeds: int,
    text_tasks: int,
    ner_tasks: int,
    text_model: str,
    max_false_share: float,
) -> None:
    config = ReviewConfig(max_false_share=max_false_share)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    # Fits on a few thousand rows gain nothing from BLAS threads (see label_efficiency).
    with threadpool_limits(limits=1, user_api="blas"):
        if "image" in dataset:
            outcomes += [review_images(image_tasks, rate, image_seeds, config) for rate in rates]
    if "text" in dataset:
        outcomes += [review_texts(text_tasks, rate, text_model, config) for rate in rates]
    if "ner" in dataset:
        outcomes += [review_tweets(ner_tasks, rate, config) for rate in rates]
    context = {
        "machine": machine(),
        "max_false_share": max_false_share,
        "text_model": text_model,
        "seconds": round(time.perf_counter() - started),
    }
    click.echo("\n" + "; ".join(f"{k}: {v}" for k, v in context.items()) + "\n")
    echo_table(outcomes)
    path = RESULTS / "review_precision.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(o) | {"precision": o.precision, "recall": o.recall} for o in outcomes]
    path.write_text(json.dumps({**context, "rows": rows}, indent=2))
    click.echo(f"\nWritten to {path}")


if __name__ == "__main__":
    main()
