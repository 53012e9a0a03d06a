from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.materializers.pydantic_materializer import PydanticMaterializer

from annotation_loop.configs import ProjectSpec
from annotation_loop.labelstudio.queues import DISAGREEMENT_QUEUE, publish_disagreement_queue
from annotation_loop.learning.annotations import AnnotationSnapshot, merge_changes
from annotation_loop.learning.training_decision import TrainingDecision, decide_training
from annotation_loop.quality.aggregation import aggregate
from annotation_loop.quality.consensus import ConsensusMethod
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    label_studio_from_stack,
    previous_snapshot,
)
from materializers import AnnotationSnapshotMaterializer

logger = get_logger(__name__)


# Every output named, in the order declared (see steps/inference/sync.py).
@step(
    output_materializers={
        "annotation_snapshot": AnnotationSnapshotMaterializer,
        "training_decision": PydanticMaterializer,
    }
)
def fetch_annotations(
    project: ProjectSpec, model_name: str, consensus: ConsensusMethod = "majority"
) -> tuple[
    Annotated[AnnotationSnapshot, "annotation_snapshot"],
    Annotated[TrainingDecision, "training_decision"],
]:
    """Merges the tasks changed since the watermark of the last snapshot a model was trained
    on into a new one (what it cannot use is skipped and reported), and decides whether
    they are worth a training run."""
    client = label_studio_from_stack()
    client.check()
    project_id = client.get_or_create_project(
        project.project_name, get_task_type(project.task).label_config(project.labels)
    )
    previous = previous_snapshot(model_name, project_id, project.task, project.labels)
    snapshot = aggregate(
        merge_changes(previous, client.iter_tasks_updated_since(project_id, previous.watermark)),
        consensus,
    )
    publish_disagreement_queue(client, project_id, snapshot.undecided.keys())
    merge = snapshot.last_merge
    logger.info(
        "Fetched %d changed tasks since %s: %d labelled items now (+%d new, %d relabelled, "
        "%d removed; %d of these committed late); left out: %d skipped/cancelled, %d empty, "
        "%d tasks the loop did not create, %d malformed annotations; %d tasks whose "
        "annotators disagree with no majority%s",
        merge.fetched_tasks,
        previous.watermark or "the beginning",
        len(snapshot.items),
        merge.added,
        merge.relabelled,
        merge.removed,
        merge.late,
        merge.cancelled,
        merge.empty,
        merge.foreign,
        merge.malformed,
        len(snapshot.undecided),
        f" (the {DISAGREEMENT_QUEUE!r} tab)" if snapshot.undecided else "",
    )
    decision = decide_training(snapshot, previous.watermark, client.project_url(project_id))
    logger.info("%s: %s", "Training" if decision.train else "Not training", decision.reason)
    # On the run, where the dashboard shows why a run stopped here.
    log_metadata(
        metadata={"training_decision": decision.model_dump()},
        run_id_name_or_prefix=get_step_context().pipeline_run.id,
    )
    return snapshot, decision
