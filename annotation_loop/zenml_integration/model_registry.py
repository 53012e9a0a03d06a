"""What the ZenML Model Control Plane and the active stack hold for the loop.

Training runs are model versions; the snapshot of annotations and the trained model are
artifacts linked to them; `production` is the version inference uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from zenml import Model
from zenml.client import Client
from zenml.enums import ModelStages, StackComponentType
from zenml.models import ArtifactVersionResponse, ModelVersionResponse
from zenml.stack import StackComponent

from annotation_loop.data.task_index import TaskIndex
from annotation_loop.errors import ConfigurationError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.learning_curve import CurvePoint
from annotation_loop.task_types import Example, TaskType
from annotation_loop.zenml_integration.leases import promotion_lease

MODEL_ARTIFACT = "model"
SNAPSHOT_ARTIFACT = "annotation_snapshot"
TASK_INDEX_ARTIFACT = "task_index"


def production_version(model_name: str) -> ModelVersionResponse | None:
    try:
        return Client().get_model_version(model_name, ModelStages.PRODUCTION)
    except KeyError:
        return None


def prediction_model_version(model_name: str, version_name: str) -> str:
    """The `model_version` string predictions carry in Label Studio."""
    return f"{model_name}:{version_name}"


def load_artifact(version: ModelVersionResponse | Model, name: str) -> Any:
    """An artifact linked to a model version (a response or a step context's `Model`)."""
    artifact = version.get_artifact(name)
    if artifact is None:
        model_name = version.name if isinstance(version, Model) else version.model.name
        raise ConfigurationError(
            f"Model version {model_name}:{version.number} has no {name!r} artifact: was it "
            "produced by this project's training pipeline? (`run.py <cloud> --train` makes one)"
        )
    return artifact.load()


def score_version(
    version: ModelVersionResponse, task_type: TaskType, examples: Sequence[Example], metric: str
) -> float:
    """The model a stored version holds, scored on `examples` with the task type's `metric`."""
    return task_type.evaluate(load_artifact(version, MODEL_ARTIFACT), examples).score(metric)


def latest_snapshot(model_name: str) -> AnnotationSnapshot | None:
    """The annotation snapshot of the newest version of the model whose training finished.

    A run's version exists, with its snapshot, from its training step on; only a version
    that also carries the evaluation's `validation` metadata has a model trained on
    them. A run that failed or was killed before that leaves its version without it, so its
    annotations are fetched again by the next run instead of being taken as used. (The run's
    status would say less: a run whose learning curve or label review failed after the model
    was evaluated, and perhaps promoted, is FAILED, and a killed run stays RUNNING.)
    """
    try:
        Client().get_model(model_name)
    except KeyError:
        return None
    for version in _model_versions(model_name, "desc:number"):
        if "validation" not in version.run_metadata:
            continue
        artifact = version.get_artifact(SNAPSHOT_ARTIFACT)
        if artifact is not None:
            snapshot: AnnotationSnapshot = artifact.load()
            return snapshot
    return None


def previous_snapshot(
    model_name: str,
    project_id: int,
    task: str,
    labels: Sequence[str],
) -> AnnotationSnapshot:
    """What the next fetch starts from: the latest snapshot if it is of the same project,
    task type and label list, else an empty one (a full fetch)."""
    previous = latest_snapshot(model_name)
    if (
        previous is None
        or previous.project_id != project_id
        or previous.task != task
        or list(previous.labels) != list(labels)
    ):
        return AnnotationSnapshot(project_id=project_id, task=task, labels=tuple(labels))
    return previous


def learning_curve(
    model_name: str, metric: str, before_number: int | None = None
) -> list[CurvePoint]:
    """(labels, validation score) of every version the training pipeline evaluated, oldest
    first; only versions numbered below `before_number` if given."""
    points: list[CurvePoint] = []
    for version in _model_versions(model_name, "asc:number"):
        if before_number is not None and version.number >= before_number:
            continue
        validation = version.run_metadata.get("validation")
        if not isinstance(validation, dict) or "labelled_items" not in validation:
            continue
        score = validation.get("score", validation.get(metric))  # older runs: no "score"
        if score is not None:
            points.append(
                CurvePoint(str(version.name), int(validation["labelled_items"]), float(score))
            )
    return points


def label_quality_history(model_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(version, its `label_quality` metadata) of every version that recorded one, oldest
    first."""
    history = []
    for version in _model_versions(model_name, "asc:number"):
        recorded = version.run_metadata.get("label_quality")
        if isinstance(recorded, dict):
            history.append((str(version.name), recorded))
    return history


def _model_versions(model_name: str, sort_by: str) -> Iterator[ModelVersionResponse]:
    """Every version of the model in `sort_by` order, a page of 20 at a time."""
    client = Client()
    page = 1
    while True:
        versions = client.list_model_versions(model=model_name, sort_by=sort_by, page=page, size=20)
        yield from versions.items
        if page >= versions.total_pages:
            return
        page += 1


def version_trained_by(run_id: UUID) -> ModelVersionResponse | None:
    """The model version a training run registered, if it got that far."""
    client = Client()
    links = client.list_model_version_pipeline_run_links(pipeline_run_id=run_id, size=1)
    if not links.items:
        return None
    return client.zen_store.get_model_version(links.items[0].model_version)


def run_outputs(run_id: UUID) -> dict[str, ArtifactVersionResponse]:
    """The artifacts a run produced, by their `Annotated` output names."""
    run = Client().get_pipeline_run(run_id)
    return {artifact.name: artifact for artifact in run.produced_artifact_versions}


def latest_task_index(label_studio_url: str, project_id: int) -> TaskIndex | None:
    """The newest task index a sync of this project stored in the active stack's artifact
    store (an index in another store may not even be readable from here)."""
    client = Client()
    try:
        versions = client.list_artifact_versions(
            artifact=TASK_INDEX_ARTIFACT,
            artifact_store_id=client.active_stack.artifact_store.id,
            sort_by="desc:created",
            size=20,
        )
    except KeyError:  # no sync stored one yet
        return None
    for version in versions.items:
        metadata = version.run_metadata
        if metadata.get("label_studio_url") == label_studio_url and str(
            metadata.get("project_id")
        ) == str(project_id):
            index: TaskIndex = version.load()
            return index
    return None


def should_promote(candidate: float, production: float | None) -> bool:
    """A new version replaces production only if strictly better on the same data."""
    return production is None or candidate > production


PROMOTION_WAIT_S = 600.0  # for another run's promotion (a re-read and one evaluation at most)


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    production: ModelVersionResponse | None  # the production version it was compared with
    production_score: float | None


def _version_id(version: ModelVersionResponse | None) -> Any:
    return version.id if version is not None else None


def promote_if_better(
    candidate: Model,
    score: float | None,
    score_production: Callable[[ModelVersionResponse], float],
) -> Promotion:
    """Makes `candidate` production if its `score` beats production's (`score_production`,
    on the same validation data), as a compare-and-set: under the model's promotion lease,
    production is read again just before the stage is set, and if another run promoted a
    version meanwhile, `candidate` is compared with that one instead. `score` None (nothing
    to compare on): only a first version is promoted."""

    def compare(production: ModelVersionResponse | None) -> Promotion:
        if score is None or production is None:
            return Promotion(production is None, production, None)
        production_score = score_production(production)
        return Promotion(should_promote(score, production_score), production, production_score)

    decision = compare(production_version(candidate.name))
    if not decision.promoted:
        return decision
    lease = promotion_lease(candidate.name, f"promotion of version {candidate.number}")
    with lease.held(PROMOTION_WAIT_S):
        current = production_version(candidate.name)
        if _version_id(current) != _version_id(decision.production):
            decision = compare(current)
            if not decision.promoted:
                return decision
        candidate.set_stage(ModelStages.PRODUCTION, force=True)
    return decision


def label_studio_from_stack() -> LabelStudioClient:
    """A client for the active stack's Label Studio annotator (URL + secret API key)."""
    # Read again from the store: a process keeps the active stack's model it first read (in a
    # step too), so a component updated since (a new Label Studio URL or key, registered by
    # a later command in the same process) would be seen as it was.
    client = Client()
    stack = client.get_stack(client.active_stack_model.id)
    annotators = stack.components.get(StackComponentType.ANNOTATOR) or []
    annotator = StackComponent.from_model(annotators[0]) if annotators else None
    if annotator is None or annotator.flavor != "label_studio":
        raise ConfigurationError(
            f"The active ZenML stack {stack.name!r} has no Label Studio annotator: "
            "run `python run.py <cloud> ...`, which registers one"
        )
    secret = annotator.get_authentication_secret()  # type: ignore[attr-defined]
    api_key = secret.secret_values.get("api_key") if secret else None
    if not api_key:
        raise ConfigurationError(
            f"The annotator {annotator.name!r} has no API key secret: set "
            "LOOP_LABEL_STUDIO_API_KEY and re-run, which stores it as a ZenML secret"
        )
    return LabelStudioClient(annotator.get_url(), api_key)  # type: ignore[attr-defined]
