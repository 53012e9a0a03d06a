"""The queues annotators work from, as Label Studio shows them: saved Data Manager tabs and
the project's labelling order."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from annotation_loop.active_learning import RankingConfig, queue_scores, rank_for_labelling
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import Prediction

LABELLING_QUEUE = "Label next (active learning)"
REVIEW_QUEUE = "Review: model disagrees"
REVIEW_SUFFIX = " review"  # review suggestions' model version: "<model>:<version> review"


def ranked_scores(predictions: Sequence[Prediction], config: RankingConfig) -> list[float]:
    """Prediction scores that order the tasks by `config`'s strategy, lowest first (Label
    Studio's uncertainty sampling and the queue's sort): the model's confidences, reassigned
    in queue order, so a score keeps reading like a confidence."""
    if not predictions:
        return []
    embeddings = [p.embedding for p in predictions if p.embedding is not None]
    order = rank_for_labelling(
        np.array([p.uncertainty for p in predictions], dtype=np.float64),
        embeddings if len(embeddings) == len(predictions) else None,
        config,
    )
    scores = queue_scores(order, np.array([p.score for p in predictions], dtype=np.float64))
    return [float(score) for score in scores]


def publish_labelling_queue(client: LabelStudioClient, project_id: int, model_version: str) -> None:
    """The labelling stream and a saved tab follow `model_version`'s scores, lowest first,
    over the tasks nobody labelled yet."""
    client.use_predictions_of(project_id, model_version)
    client.save_view(
        project_id,
        LABELLING_QUEUE,
        filters=[
            {
                "filter": "filter:tasks:total_annotations",
                "operator": "equal",
                "type": "Number",
                "value": 0,
            },
            {
                "filter": "filter:tasks:predictions_model_versions",
                "operator": "contains",
                "type": "List",
                "value": [model_version],
            },
        ],
        ordering=["tasks:predictions_score"],
    )


def review_model_version(model_version: str) -> str:
    return model_version + REVIEW_SUFFIX


def publish_review_queue(client: LabelStudioClient, project_id: int, review_version: str) -> None:
    """A saved tab of the labelled tasks whose label the model confidently disputes, each with
    its suggestion as a prediction of `review_version`; least likely correct first."""
    client.save_view(
        project_id,
        REVIEW_QUEUE,
        filters=[
            {
                "filter": "filter:tasks:predictions_model_versions",
                "operator": "contains",
                "type": "List",
                "value": [review_version],
            }
        ],
        ordering=["tasks:predictions_score"],
    )
