"""The oracle: simulated annotators standing in for people, for the demo and the tests only.

Each simulated annotator is a Label Studio user of their own and labels tasks through the
API from known true labels: a careful one gives the truth (accepting a correct
pre-annotation, correcting a wrong one), a careless one gets a known share of tasks wrong
(`dev.label_noise`), and one who accepts every pre-annotation keeps whatever was shown.
Real use has people in Label Studio instead.

A task in the label-quality overlap set (`LabelQuality.in_overlap`) is labelled by several
of them, the others by one; who labels which task, and which labels they get wrong, is fixed
by the task, so a rerun makes the same choices and adds nothing to what is there.

Its report counts what a careful person would have kept of the pre-annotations: whole
items, or, for a task type whose demo data counts units (`KeptUnits`: the boxes of an
image), units; and what each simulated annotator did.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tqdm import tqdm

from annotation_loop.dev.label_noise import wrong_target
from annotation_loop.errors import ConfigurationError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.learning.annotations import AnnotationSnapshot, LabelledItem
from annotation_loop.quality.consensus import AnnotatorLabel
from annotation_loop.quality.sampling import LabelQuality
from annotation_loop.task_types import DemoData, TaskType, demo_data_of


@runtime_checkable
class KeptUnits(Protocol):
    """Demo data whose pre-annotations are judged unit by unit (the boxes of an image), not
    as a whole: an annotator fixing one box of five keeps the other four."""

    unit_name: str  # what a unit is, plural: "boxes"

    def kept_units(self, predicted: Any, truth: Any) -> tuple[int, int]:
        """(units of `predicted` kept unchanged given `truth`, units of `predicted`)."""
        ...


def kept_units(demo: DemoData, predicted: Any, truth: Any) -> tuple[int, int]:
    """(units kept, units pre-annotated): the demo data's own count, else the item as one
    unit, kept when it needs no change."""
    if isinstance(demo, KeptUnits):
        return demo.kept_units(predicted, truth)
    return (1 if demo.same_target(predicted, truth) else 0), 1


def unit_name(task_type: TaskType) -> str:
    """What the oracle's acceptance counts for this task type: "boxes", or "items"."""
    return task_type.unit_name if isinstance(task_type, KeptUnits) else "items"


# A simulated annotator's name is their Label Studio username and the local part of their email.
ANNOTATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
ANNOTATOR_DOMAIN = "annotators.local"


@dataclass(frozen=True)
class SimulatedAnnotator:
    """A stand-in for one person: gives the true target, except on `error_rate` of the
    tasks (drawn per task, see `label`), where they give a wrong one; one who
    `accepts_pre_annotations` keeps every pre-annotation they are shown, right or wrong."""

    name: str
    error_rate: float = 0.0
    accepts_pre_annotations: bool = False

    def __post_init__(self) -> None:
        if not ANNOTATOR_NAME.fullmatch(self.name):
            raise ConfigurationError(
                f"Simulated annotator name {self.name!r} is not usable as a Label Studio "
                "username: use letters, digits, '_', '.' and '-', starting with a letter or digit"
            )
        if not 0.0 <= self.error_rate <= 1.0:
            raise ConfigurationError(
                f"Simulated annotator {self.name!r} has error_rate {self.error_rate}: "
                "give a share of tasks between 0 and 1"
            )

    @property
    def email(self) -> str:
        return f"{self.name}@{ANNOTATOR_DOMAIN}"

    def label(
        self,
        task_type: TaskType,
        truth: Any,
        predicted: Any | None,
        labels: Sequence[str],
        task_key: str,
    ) -> Any:
        """This annotator's target for the task with key `task_key`. Whether they err, and
        how, is drawn from a generator seeded by their name and the task, so a rerun (or
        another machine) gives the same labels."""
        if self.accepts_pre_annotations and predicted is not None:
            return predicted
        rng = random.Random(f"{self.name}\n{task_key}")
        if rng.random() < self.error_rate:
            return wrong_target(task_type, truth, labels, rng)
        return truth


# Unless told otherwise, the oracle is one annotator who always gives the truth.
ONE_CAREFUL_ANNOTATOR = (SimulatedAnnotator("oracle"),)


@dataclass(frozen=True)
class OracleTask:
    task_id: int
    key: str  # the item's key under the dataset ("batch_1/00001.png", "batch_1/t.jsonl#7")
    input_ref: str  # what the task shows the model: an object URI, or the text
    predicted: Any | None = None  # the pre-annotation's target, if it had one
    # The item's content hash, which picks the overlap set; "" only without a LabelQuality.
    content_hash: str = ""


@dataclass(frozen=True)
class AnnotatorCounts:
    """What one simulated annotator did in one oracle run."""

    labelled: int = 0  # annotations posted
    wrong: int = 0  # of them, targets other than the truth
    accepted_pre_annotations: int = 0  # of them, pre-annotations kept as shown, right or wrong


@dataclass(frozen=True)
class OracleReport:
    """The tasks the run annotated, with their pre-annotations judged against the truth (what
    a careful annotator keeps), and what each simulated annotator did."""

    labelled: int
    accepted: int  # pre-annotation was right: a careful annotator keeps it unchanged
    corrected: int  # pre-annotation was wrong: a careful annotator replaces it
    without_prediction: int
    unknown: int  # no true label known for the object: left for people
    # Pre-annotated units (items, or boxes: see `KeptUnits`) and those kept unchanged.
    kept_units: int = 0
    predicted_units: int = 0
    annotators: Mapping[str, AnnotatorCounts] = field(default_factory=dict)  # by name
    already_annotated: int = 0  # annotations not posted: that annotator had labelled the task

    @property
    def acceptance_rate(self) -> float | None:
        """The share of pre-annotated units kept unchanged: of items, or of boxes."""
        return self.kept_units / self.predicted_units if self.predicted_units else None


def crew(
    annotators: Sequence[SimulatedAnnotator], task_key: str, size: int
) -> list[SimulatedAnnotator]:
    """The first `size` annotators of a rotation of `annotators` that starts at a place fixed
    by the task: each task gets the same ones in every run, and the load spreads evenly."""
    digest = hashlib.sha256(task_key.encode()).digest()
    start = int.from_bytes(digest[:8], "big") % len(annotators)
    return [*annotators[start:], *annotators[:start]][:size]


def _check_crew(
    annotators: Sequence[SimulatedAnnotator],
    labels: Sequence[str],
    quality: LabelQuality | None,
    tasks: Sequence[OracleTask],
) -> None:
    if not annotators:
        raise ConfigurationError("No simulated annotators given: name at least one")
    names = [annotator.name for annotator in annotators]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"Simulated annotators share a name: {names}; name each once")
    if not labels and any(annotator.error_rate > 0 for annotator in annotators):
        raise ConfigurationError(
            "Simulated annotators with an error rate need the project's labels to err among: "
            "pass them (the settings' labels)"
        )
    if quality is None or quality.overlap_share == 0:
        return
    if quality.overlap_annotators > len(annotators):
        raise ConfigurationError(
            f"The overlap set needs {quality.overlap_annotators} annotators per task but "
            f"{len(annotators)} simulated annotators are given: add annotators or lower "
            "LOOP_OVERLAP_ANNOTATORS"
        )
    if any(not task.content_hash for task in tasks):
        raise ValueError("OracleTask.content_hash is needed to find the overlap set")


def label_with_truth(
    client: LabelStudioClient,
    task_type: TaskType,
    tasks: Sequence[OracleTask],
    truth: Mapping[str, Any],
    *,
    annotators: Sequence[SimulatedAnnotator] = ONE_CAREFUL_ANNOTATOR,
    quality: LabelQuality | None = None,
    labels: Sequence[str] = (),
) -> OracleReport:
    """Labels `tasks` whose true target `truth` knows (by item key): each by
    `quality.overlap_annotators` of `annotators` if it is in the overlap set, else by one
    (see `crew`); `labels` are the project's, which an annotator's wrong labels come from.
    An annotator who labelled a task before (a rerun) is not asked again."""
    demo = demo_data_of(task_type)
    _check_crew(annotators, labels, quality, tasks)
    user_ids = {a.name: client.ensure_user(a.email, a.name) for a in annotators}
    posted: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    kept_shown: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    kept = predicted_units = 0
    for task in tqdm(tasks, desc="oracle labelling", unit="task"):
        target = truth.get(task.key)
        if target is None:
            outcomes["unknown"] += 1
            continue
        in_overlap = quality is not None and quality.in_overlap(task.content_hash)
        size = quality.overlap_annotators if quality is not None and in_overlap else 1
        done = client.annotator_ids(task.task_id)
        todo = [a for a in crew(annotators, task.key, size) if user_ids[a.name] not in done]
        outcomes["already_annotated"] += size - len(todo)
        for annotator in todo:
            label = annotator.label(task_type, target, task.predicted, labels, task.key)
            result = task_type.result_for_target(label, task.input_ref)
            client.create_annotation(task.task_id, result, completed_by=user_ids[annotator.name])
            posted[annotator.name] += 1
            wrong[annotator.name] += not demo.same_target(label, target)
            kept_shown[annotator.name] += (
                annotator.accepts_pre_annotations and task.predicted is not None
            )
        if not todo:
            continue
        if task.predicted is None:
            outcomes["without_prediction"] += 1
            continue
        outcomes["accepted" if demo.same_target(task.predicted, target) else "corrected"] += 1
        task_kept, task_units = kept_units(demo, task.predicted, target)
        kept += task_kept
        predicted_units += task_units
    return OracleReport(
        labelled=outcomes["accepted"] + outcomes["corrected"] + outcomes["without_prediction"],
        accepted=outcomes["accepted"],
        corrected=outcomes["corrected"],
        without_prediction=outcomes["without_prediction"],
        unknown=outcomes["unknown"],
        kept_units=kept,
        predicted_units=predicted_units,
        annotators={
            a.name: AnnotatorCounts(posted[a.name], wrong[a.name], kept_shown[a.name])
            for a in annotators
        },
        already_annotated=outcomes["already_annotated"],
    )


def crowd_snapshot(
    task_type: TaskType,
    labels: tuple[str, ...],
    annotators: Sequence[SimulatedAnnotator],
    truth: Mapping[int, Any],
    shown: Mapping[int, Any] | None = None,
    key_prefix: str = "task-",
) -> AnnotationSnapshot:
    """Offline, without Label Studio: the snapshot a merge builds when all `annotators`
    label every task of `truth` (the true target by task id), each task shown its
    pre-annotation in `shown` (none where it has none). `key_prefix` names the tasks, and so
    seeds the annotators' slips: another prefix, other slips."""
    suggestions = shown or {}
    items = []
    for task_id, target in truth.items():
        key = f"{key_prefix}{task_id}"
        suggestion = suggestions.get(task_id)
        annotations = [
            AnnotatorLabel(a.name, a.label(task_type, target, suggestion, labels, key))
            for a in annotators
        ]
        items.append(LabelledItem.by_majority(task_id, key, key, annotations, suggestion))
    return AnnotationSnapshot.of_items(0, task_type.name, labels, items)


def consensus_accuracy(snapshot: AnnotationSnapshot, truth: Mapping[int, Any]) -> float:
    """The share of tasks whose training label is the truth; an undecided task counts as
    wrong, since training goes without it."""
    right = sum(item.target == truth[task_id] for task_id, item in snapshot.items.items())
    return right / len(truth)
