from typing import Any

from zenml import pipeline

from annotation_loop.data.storage import DataSource
from pipelines.settings import DOCKER
from steps import predict_batch, push_predictions, sync_batch


@pipeline(enable_cache=False, settings={"docker": DOCKER})
def inference_pipeline(
    task: str,
    source: DataSource,
    batch: str,
    project_name: str,
    labels: list[str],
    batch_size: int = 128,
    active_learning: dict[str, Any] | None = None,
) -> None:
    """New items of a batch -> Label Studio tasks -> production model's pre-annotations, scored
    so that annotators meet the most useful tasks first."""
    batch_tasks, _ = sync_batch(
        task=task, source=source, batch=batch, project_name=project_name, labels=labels
    )
    predictions = predict_batch(
        task=task,
        batch_tasks=batch_tasks,
        source=source,
        batch_size=batch_size,
        active_learning=active_learning or {},
    )
    push_predictions(batch_predictions=predictions)
