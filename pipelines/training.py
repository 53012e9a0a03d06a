from typing import Any

from zenml import pipeline

from annotation_loop.data.storage import DataSource
from pipelines.settings import DOCKER, TRAINING_RESOURCES
from steps import (
    evaluate_and_promote,
    fetch_annotations,
    record_learning_curve,
    review_labels,
    train_model,
)


@pipeline(enable_cache=False, settings={"docker": DOCKER})
def training_pipeline(
    task: str,
    project_name: str,
    labels: list[str],
    source: DataSource,
    train_config: dict[str, Any],
    validation_fraction: float = 0.2,
    continue_from_production: bool = False,
    label_review: dict[str, Any] | None = None,
) -> None:
    """Annotations changed since the last run -> fine-tuned model version -> maybe production,
    the model's learning curve, and the labels it disputes, for review."""
    snapshot = fetch_annotations(task=task, project_name=project_name, labels=labels)
    model = train_model.with_options(settings={"resources": TRAINING_RESOURCES})(
        snapshot=snapshot,
        source=source,
        train_config=train_config,
        validation_fraction=validation_fraction,
        continue_from_production=continue_from_production,
    )
    metrics, _ = evaluate_and_promote(
        model=model,
        snapshot=snapshot,
        source=source,
        validation_fraction=validation_fraction,
    )
    record_learning_curve(validation_metrics=metrics)
    review_labels(model=model, snapshot=snapshot, source=source, label_review=label_review or {})
