"""What a task type is: everything the loop needs to know about one kind of labelling.

A task type is a small unit with no ZenML in it: its Label Studio label config, how the
bucket's raw items become task data, how annotations become training targets, the model
(train, predict, evaluate), and how predictions become Label Studio results. The steps
and pipelines only ever talk to this interface, so a new kind of labelling is one new
module (registered in `annotation_loop.task_types`) plus its configs. Seeding the demo and
reviewing labels are optional, in `annotation_loop.task_types.capabilities`.

Targets are a task type's own Python values (a label, a tuple of spans); they are stored in
snapshots through `encode_target` / `decode_target`, which must round-trip.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from PIL.Image import Image

from annotation_loop.data.storage import ObjectStore
from annotation_loop.task_types.metrics import ValidationMetrics

# How annotators' labels of the same task are compared (`annotation_loop.quality.agreement`):
# as one label each, as entity spans, as boxes on an image, or as transcripts.
AgreementKind = Literal["labels", "spans", "boxes", "transcripts"]


@dataclass(frozen=True)
class SourceItem:
    """One thing to label: an image object, a text file, or one row of a text file."""

    key: str  # relative to the dataset: "batch_1/00001.png", "batch_1/reviews.jsonl#42"
    uri: str  # where it lives: the object's URI, plus "#<row id>" for a row
    batch: str
    content_hash: str  # the task's identity: the same content is never imported twice
    text: str | None = None  # the item's text, for text task types


@dataclass
class ItemListing:
    """The items of one batch, and what was left out of it and why."""

    batch: str
    items: list[SourceItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # keys of files this task type ignores
    problems: list[str] = field(default_factory=list)  # one line each: bad rows, encodings


@dataclass(frozen=True)
class Example:
    """A model input with its target: for training and evaluation."""

    key: str
    input: Any  # image bytes, or a text
    target: Any


@dataclass(frozen=True)
class Prediction:
    """What the model says about one item, and what active learning ranks it by."""

    key: str
    target: Any
    score: float  # the model's confidence in `target`, in [0, 1]
    # How unsure the model is about the item, in [0, 1]: the margin between its two most
    # probable classes (for NER, of its least sure word).
    uncertainty: float = 0.0
    # The model's features of the item (1-D float16), for diversity. Arrays have no single
    # truth value, so equality leaves them out.
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Evaluation:
    """A model's scores on a validation split."""

    metrics: ValidationMetrics  # logged on the model version
    figure: Image  # the picture that explains the metrics (confusion matrix, per-type F1)

    def score(self, metric: str) -> float:
        return self.metrics.score(metric)


@dataclass(frozen=True)
class TaskDefaults:
    """What the demo labels, unless LOOP_* settings say otherwise."""

    project_name: str
    model_name: str
    dataset: str  # the prefix under the bucket that holds batch_1/, batch_2/, ...
    labels: tuple[str, ...]
    # Items per demo batch: what makes a round take minutes, not hours, on a laptop's CPU.
    demo_batch_size: int = 200


class TaskType(ABC):
    """One kind of labelling. Subclasses import their model libraries lazily, inside methods,
    so that choosing a task type costs nothing until a model is needed."""

    name: ClassVar[str]
    description: ClassVar[str]  # "image classification"
    item_description: ClassVar[str]  # what a batch holds: "JPEG/PNG images"
    metrics_type: ClassVar[type[ValidationMetrics]]  # what `evaluate` reports
    promotion_metric: ClassVar[str]  # the score of `metrics_type` a new version must beat
    defaults: ClassVar[TaskDefaults]
    from_name: ClassVar[str] = "label"  # the control tag's name in the label config
    # Whether tasks point into the bucket (so Label Studio needs a source storage to show
    # them) or carry their content themselves.
    items_in_bucket: ClassVar[bool]
    # What `train` takes (`train_config:` in configs/<task>/training.yaml): a dataclass whose
    # module imports no model library, so that a config is checked before anything runs.
    train_config_type: ClassVar[type[Any]]
    # How agreement between annotators is measured on this task type's targets; None: it
    # is not measured.
    agreement_kind: ClassVar[AgreementKind | None] = None

    # -- Label Studio ------------------------------------------------------------------
    @abstractmethod
    def label_config(self, labels: Sequence[str]) -> str:
        """The project's XML label config."""

    @abstractmethod
    def task_data(self, item: SourceItem, store: ObjectStore) -> dict[str, Any]:
        """A task's `data`: what annotators see, plus `uri`, `key`, `batch`, `content_hash`."""

    @abstractmethod
    def input_ref(self, data: Mapping[str, Any]) -> str:
        """What a snapshot keeps to rebuild the model input from a task's data: the object
        URI for bytes that stay in the bucket, the text itself for texts."""

    @abstractmethod
    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> Any | None:
        """The target an annotation or prediction result encodes; None if it labels nothing.
        Raises a `LoopError` naming `where` (e.g. "task 12") for results that cannot be used."""

    @abstractmethod
    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        """The Label Studio result regions of `target` (with per-region scores if any)."""

    # -- storage -----------------------------------------------------------------------
    @abstractmethod
    def iter_items(self, store: ObjectStore, batch: str) -> Iterator[ItemListing]:
        """The batch's items with their content hashes, a page at a time as the store lists
        them (a sync imports one page while the next is listed)."""

    def list_items(self, store: ObjectStore, batch: str) -> ItemListing:
        """The batch's items, with their content hashes."""
        listing = ItemListing(batch=batch)
        for page in self.iter_items(store, batch):
            listing.items += page.items
            listing.skipped += page.skipped
            listing.problems += page.problems
        return listing

    @abstractmethod
    def load_inputs(
        self, store: ObjectStore, refs: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, Any | None]]:
        """`(key, input)` for each `(key, input_ref)`; None for an input that is gone."""

    # -- snapshots ---------------------------------------------------------------------
    def encode_target(self, target: Any) -> Any:
        """A JSON-able form of `target`."""
        return target

    def decode_target(self, encoded: Any) -> Any:
        return encoded

    def labels_of(self, target: Any) -> list[str]:
        """The labels a target uses, once per use (for label statistics)."""
        return [str(target)]

    # -- the model ---------------------------------------------------------------------
    @abstractmethod
    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        """(trained model artifact, JSON-able training report); continues from `init`."""

    @abstractmethod
    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        """Predictions for `(key, input)` pairs, and the keys of inputs it could not use."""

    @abstractmethod
    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        """Scores on labelled examples, as a `metrics_type`."""
