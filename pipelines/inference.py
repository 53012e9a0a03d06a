from zenml import pipeline

from annotation_loop.configs import ProjectSpec
from annotation_loop.learning.active_learning import RankingConfig
from pipelines.settings import DOCKER, ENVIRONMENT
from steps import choose_next_batch, predict_batch, push_predictions, sync_batch


# Dynamic: whether there is a batch to sync is decided by a step, at run time.
@pipeline(dynamic=True, enable_cache=False, settings={"docker": DOCKER}, environment=ENVIRONMENT)
def inference_pipeline(
    project: ProjectSpec,
    model_name: str,
    batch: str | None = None,
    rerun: bool = False,
    batch_size: int = 128,
    active_learning: RankingConfig | None = None,
) -> None:
    """The next batch (or `batch`) -> Label Studio tasks -> the production model's
    pre-annotations, scored so that annotators meet the most useful tasks first."""
    choice, index = choose_next_batch(project=project, batch=batch, rerun=rerun)
    if choice.load().batch is None:
        return
    batch_tasks, _ = sync_batch(project=project, choice=choice, index=index)
    predictions = predict_batch(
        model_name=model_name,
        project=project,
        batch_tasks=batch_tasks,
        batch_size=batch_size,
        active_learning=active_learning or RankingConfig(),
    )
    push_predictions(batch_predictions=predictions)
