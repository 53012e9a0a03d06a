"""Agreement, consensus accuracy and the anchoring figure with simulated annotators of known
error rates (issue 19): what `run.py quality` would report, checked against the truth.

    python -m benchmarks.annotator_agreement              # 2,000 tasks, 10 labels
    python -m benchmarks.annotator_agreement --tasks 500

A simulation of the overlap set, without Label Studio or a model: every task has a true label
(uniform over the MNIST demo's ten digits) and a pre-annotation from a model that is right
`--model-accuracy` of the time; the anchoring check withholds it from 20% of the tasks. Three
annotators (`dev.oracle.SimulatedAnnotator`, the demo's and tests' oracle) label every task;
their labels go through the loop's own code: `majority_vote` while merging, crowd-kit's
Dawid-Skene (`quality.aggregation`), `measure_agreement` (Krippendorff's alpha, Cohen's kappa)
and `measure_anchoring`.
"""

from __future__ import annotations

import random

import click

from annotation_loop.dev.label_noise import wrong_target
from annotation_loop.dev.oracle import SimulatedAnnotator, consensus_accuracy, crowd_snapshot
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.quality.aggregation import aggregate, annotator_reliability
from annotation_loop.quality.agreement import measure_agreement
from annotation_loop.quality.anchoring import measure_anchoring
from annotation_loop.quality.sampling import LabelQuality
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import demo_data_of

IMAGE = get_task_type("image")
LABELS = tuple(IMAGE.defaults.labels)
QUALITY = LabelQuality(overlap_share=1.0, overlap_annotators=3, anchoring_share=0.2)


def simulate(
    crew: tuple[SimulatedAnnotator, ...], tasks: int, model_accuracy: float, seed: int
) -> tuple[AnnotationSnapshot, dict[int, str]]:
    """Every task labelled by the whole crew; the snapshot the merge would build, and the
    truth by task id."""
    rng = random.Random(seed)
    key_prefix = f"task-{seed}-"
    truth: dict[int, str] = {}
    shown: dict[int, str] = {}
    for task_id in range(tasks):
        truth[task_id] = true = rng.choice(LABELS)
        predicted = (
            true if rng.random() < model_accuracy else wrong_target(IMAGE, true, LABELS, rng)
        )
        if not QUALITY.withholds_pre_annotation(f"{key_prefix}{task_id}"):
            shown[task_id] = predicted
    return crowd_snapshot(IMAGE, LABELS, crew, truth, shown, key_prefix), truth


@click.command()
@click.option("--tasks", default=2000, show_default=True)
@click.option("--model-accuracy", default=0.8, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(tasks: int, model_accuracy: float, seed: int) -> None:
    honest = (SimulatedAnnotator("a05", error_rate=0.05), SimulatedAnnotator("a10", error_rate=0.1))
    crews = {
        "errors 5/10/30%": (*honest, SimulatedAnnotator("a30", error_rate=0.3)),
        "errors 5/10%, third never accepts (10%)": (
            *honest,
            SimulatedAnnotator("third", error_rate=0.1),
        ),
        "errors 5/10%, third accepts every pre-annotation": (
            *honest,
            SimulatedAnnotator("third", error_rate=0.1, accepts_pre_annotations=True),
        ),
    }
    click.echo(f"{tasks} tasks, 10 labels, pre-annotations {model_accuracy:.0%} right\n")
    header = (
        "crew | alpha | majority acc. | undecided | Dawid-Skene acc. | third annotator: "
        "agreement without / with pre-annotation, wrong suggestions kept"
    )
    click.echo(header)
    click.echo("|".join("---" for _ in header.split("|")))
    for name, crew in crews.items():
        snapshot, truth = simulate(crew, tasks, model_accuracy, seed)
        shared = list(snapshot.shared_items())
        agreement = measure_agreement(IMAGE, shared, LABELS)
        anchoring = measure_anchoring(shared, QUALITY, demo_data_of(IMAGE).same_target)
        third = anchoring.per_annotator[crew[2].name]
        reliability = annotator_reliability(snapshot, "dawid_skene")
        estimated = ", ".join(
            f"{who} {r.estimated_accuracy:.2f}"
            for who, r in reliability.items()
            if r.estimated_accuracy is not None
        )
        dawid_skene = consensus_accuracy(aggregate(snapshot, "dawid_skene"), truth)
        click.echo(
            f"{name} | {agreement.overall:.3f} | {consensus_accuracy(snapshot, truth):.3f} | "
            f"{len(snapshot.undecided)} | {dawid_skene:.3f} | "
            f"{_share(third.control_agreement)} / {_share(third.pre_annotated_agreement)}, "
            f"{_share(third.wrong_suggestions_kept)} of {third.wrong_suggestions}"
        )
        click.echo(f"    Dawid-Skene's estimated accuracy: {estimated}")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    main()
