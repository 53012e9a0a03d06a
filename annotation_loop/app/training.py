"""`run.py <cloud> --train`: the training pipeline on the cloud's stack, one run per model at
a time, and what it did, read back from the Model Control Plane."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from annotation_loop.app.environment import prepare_stack
from annotation_loop.app.project import project_spec
from annotation_loop.configs import TrainingParameters, load_training_parameters
from annotation_loop.settings import Settings


@dataclass(frozen=True)
class TrainingOutcome:
    message: str
    model_version: str | None = None  # None: nothing new, no version registered
    labelled_items: int = 0
    metric: str | None = None  # the task type's promotion metric
    validation_score: float | None = None
    promoted: bool | None = None


def training_parameters(settings: Settings) -> TrainingParameters:
    """configs/<task>/training.yaml, validated, for the model LOOP_MODEL_NAME names."""
    parameters = load_training_parameters(settings.task)
    model = parameters.model.model_copy(update={"name": settings.model_name})
    return parameters.model_copy(update={"model": model})


def train(
    cloud: str,
    settings: Settings,
    rerun: bool = False,
    notify: Callable[[str], None] | None = None,
) -> TrainingOutcome:
    """Runs the training pipeline (continuing from the production model with `rerun`); a
    second run of the same model waits for the first (`notify` hears about the wait)."""
    from annotation_loop.zenml_integration.leases import command_lease
    from pipelines import training_pipeline

    parameters = training_parameters(settings)
    with command_lease("train", cloud, settings).held(settings.lease_wait, notify):
        prepare_stack(cloud, settings)
        run = training_pipeline(
            project=project_spec(cloud, settings),
            continue_from_production=rerun,
            **parameters.model_dump(),
        )
    return _outcome(run.id, settings.model_name)


def _outcome(run_id: UUID, model_name: str) -> TrainingOutcome:
    from zenml.client import Client

    from annotation_loop.learning.training_decision import TrainingDecision
    from annotation_loop.learning.validation import PromotionReport, RecordedValidation
    from annotation_loop.zenml_integration.model_registry import version_trained_by

    run = Client().get_pipeline_run(run_id)
    decision = TrainingDecision.model_validate(run.run_metadata["training_decision"])
    version = version_trained_by(run.id)
    if not decision.train or version is None:
        return TrainingOutcome(decision.reason, labelled_items=decision.labelled_items)
    validation = RecordedValidation.model_validate(version.run_metadata["validation"])
    promotion = PromotionReport.model_validate(version.run_metadata["promotion"])
    return TrainingOutcome(
        f"Trained {model_name}:{version.name} on {validation.labelled_items} labelled "
        f"items: validation {validation.metric} {validation.score:.3f}, "
        + ("promoted to production" if promotion.promoted else "production unchanged"),
        model_version=version.name,
        labelled_items=validation.labelled_items,
        metric=validation.metric,
        validation_score=validation.score,
        promoted=promotion.promoted,
    )
