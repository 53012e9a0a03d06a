from zenml import pipeline

from annotation_loop.configs import ModelSpec, ProjectSpec, TrainConfigValues
from annotation_loop.learning.label_review import ReviewConfig
from annotation_loop.quality.consensus import ConsensusMethod
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import LabelReview
from pipelines.settings import DOCKER, ENVIRONMENT, TRAINING_RESOURCES
from steps import (
    evaluate_model,
    fetch_annotations,
    promote_model,
    record_label_quality,
    record_learning_curve,
    review_labels,
    train_model,
)


# Dynamic: whether anything is trained is decided by a step, at run time, wherever the run
# was started from (CLI, schedule, dashboard, remote orchestrator).
@pipeline(dynamic=True, enable_cache=False, settings={"docker": DOCKER}, environment=ENVIRONMENT)
def training_pipeline(
    project: ProjectSpec,
    model: ModelSpec,
    validation_fraction: float = 0.2,
    train_config: TrainConfigValues | None = None,
    label_review: ReviewConfig | None = None,
    consensus: ConsensusMethod = "majority",
    continue_from_production: bool = False,
) -> None:
    """Annotations changed since the last run -> (only if there are any) a fine-tuned model
    version -> its evaluation -> maybe production, its learning curve, the annotators'
    agreement, and the labels it disputes, for review."""
    snapshot, decision = fetch_annotations(
        project=project, model_name=model.name, consensus=consensus
    )
    if not decision.load().train:
        return  # no model version is registered: the steps below are what create one
    # The model version exists from the first step that is configured with it.
    train, evaluate, promote, curve, review, quality = (
        step.with_options(model=model.zenml_model())
        for step in (
            train_model,
            evaluate_model,
            promote_model,
            record_learning_curve,
            review_labels,
            record_label_quality,
        )
    )
    trained = train.with_options(settings={"resources": TRAINING_RESOURCES})(
        snapshot=snapshot,
        source=project.source,
        train_config=train_config or {},
        validation_fraction=validation_fraction,
        continue_from_production=continue_from_production,
    )
    validation, _ = evaluate(
        model=trained,
        snapshot=snapshot,
        source=project.source,
        validation_fraction=validation_fraction,
    )
    promote(
        validation=validation,
        snapshot=snapshot,
        source=project.source,
        validation_fraction=validation_fraction,
    )
    curve(validation=validation)
    quality(snapshot=snapshot, project=project, consensus=consensus)
    if isinstance(get_task_type(project.task), LabelReview):  # an optional capability
        review(
            model=trained,
            snapshot=snapshot,
            source=project.source,
            label_review=label_review or ReviewConfig(),
        )
