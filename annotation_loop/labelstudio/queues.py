"""The queues annotators work from, as Label Studio shows them: saved Data Manager tabs and
the project's labelling order."""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Collection

import numpy as np

from annotation_loop.labelstudio import filters
from annotation_loop.labelstudio.client import LabelStudioClient
from annotation_loop.learning.active_learning import RankingConfig, queue_scores, rank_for_labelling
from annotation_loop.task_types import Prediction

LABELLING_QUEUE = "Label next (active learning)"
REVIEW_QUEUE = "Review: model disagrees"
DISAGREEMENT_QUEUE = "Disagreement: no majority"
# The most tasks the disagreement tab lists (its filter names each one): the oldest first.
MAX_DISAGREEMENT_TASKS = 500
REVIEW_SUFFIX = " review"  # review suggestions' model version: "<model>:<version> review"


class LabellingOrder:
    """Prediction scores that order a batch's tasks by `config`'s strategy, lowest first
    (Label Studio's uncertainty sampling and the queue's sort): the model's confidences,
    reassigned in queue order, so a score keeps reading like a confidence.

    Predictions are added as the model makes them. Each keeps two numbers here; its
    embedding is kept only while it is among the pool_factor * diverse_head most uncertain
    so far (a heap), the only ones the diverse head is picked from, so memory does not grow
    with the batch.
    """

    def __init__(self, config: RankingConfig) -> None:
        self.config = config
        self._uncertainty = array("d")
        self._confidence = array("d")
        self._diverse = config.strategy == "uncertainty+diversity"
        self._pool_size = config.pool_factor * config.diverse_head
        # A min-heap of (uncertainty, -position, embedding): its root is the pool's least
        # uncertain, the later one of equals, which is what a full sort would leave out.
        self._pool: list[tuple[float, int, np.ndarray]] = []
        self._embeddings_missing = False

    def add(self, prediction: Prediction) -> None:
        position = len(self._uncertainty)
        self._uncertainty.append(prediction.uncertainty)
        self._confidence.append(prediction.score)
        if not self._diverse or self._embeddings_missing or not self._pool_size:
            return
        if prediction.embedding is None:
            self._embeddings_missing, self._pool = True, []
            return
        key = (prediction.uncertainty, -position)
        if len(self._pool) == self._pool_size:
            if key <= self._pool[0][:2]:
                return
            heapq.heappop(self._pool)
        # A copy: a model's embeddings are rows of its batch's array, and a kept view would
        # keep the whole batch alive.
        heapq.heappush(self._pool, (*key, prediction.embedding.copy()))

    def scores(self) -> list[float]:
        """One score per prediction added, in the order they were added."""
        if not self._uncertainty:
            return []
        embeddings = (
            None
            if not self._diverse or self._embeddings_missing
            else {-negative: embedding for _, negative, embedding in self._pool}
        )
        order = rank_for_labelling(
            np.frombuffer(self._uncertainty, dtype=np.float64), embeddings, self.config
        )
        scores = queue_scores(order, np.frombuffer(self._confidence, dtype=np.float64))
        return [float(score) for score in scores]


def publish_labelling_queue(client: LabelStudioClient, project_id: int, model_version: str) -> None:
    """The labelling stream and a saved tab follow `model_version`'s scores, lowest first,
    over the tasks nobody labelled yet."""
    client.use_predictions_of(project_id, model_version)
    client.save_view(
        project_id,
        LABELLING_QUEUE,
        filters.all_of([filters.unlabelled(), filters.has_prediction_of(model_version)]),
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
        filters.all_of([filters.has_prediction_of(review_version)]),
        ordering=["tasks:predictions_score"],
    )


def publish_disagreement_queue(
    client: LabelStudioClient, project_id: int, task_ids: Collection[int]
) -> None:
    """A saved tab of the tasks whose annotators split with no majority (none of them is
    trained on), for a reviewer to decide by marking one annotation as ground truth; no tab
    while there are none."""
    if not task_ids:
        client.delete_view(project_id, DISAGREEMENT_QUEUE)
        return
    # Label Studio's filters select ids by value or range only: one item per task.
    listed = sorted(task_ids)[:MAX_DISAGREEMENT_TASKS]
    client.save_view(
        project_id,
        DISAGREEMENT_QUEUE,
        filters.any_of([filters.task_id("equal", task_id) for task_id in listed]),
        ordering=["tasks:id"],
    )
