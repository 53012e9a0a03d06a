"""Which unlabelled tasks to label first: a ranking from the model's own predictions.

Each unlabelled item brings an uncertainty (higher = the model is less sure) and an
embedding (the model's penultimate features). Three strategies order them:

- `random`: a seeded permutation, the baseline the others must beat.
- `uncertainty`: the least sure items first.
- `uncertainty+diversity`: the head of the queue is picked greedily from the most uncertain
  items, trading uncertainty against distance to what is already picked (k-center greedy),
  so that the annotators' next hour does not go to twenty near-duplicates of one confusing
  item. The rest of the queue follows by uncertainty.

Label Studio orders tasks by their prediction's `score`; `queue_scores` turns a ranking into
scores that make its ascending order ("Uncertainty sampling") follow the ranking.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from annotation_loop.errors import ConfigurationError

logger = logging.getLogger(__name__)

Strategy = Literal["random", "uncertainty", "uncertainty+diversity"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


class RankingConfig(BaseModel):
    """How a batch is ordered for labelling (`active_learning:` in inference.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = "uncertainty+diversity"
    # The mix in the head's greedy score: 0 = uncertainty only, 1 = diversity only (k-center).
    diversity_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    diverse_head: int = Field(default=1000, ge=0)  # items at the head that get the diverse order
    # The head is picked among the pool_factor * diverse_head most uncertain.
    pool_factor: int = Field(default=5, ge=1)
    seed: int = 0  # for `random`


def _probability_rows(probabilities: np.ndarray) -> np.ndarray:
    rows = np.asarray(probabilities, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise ConfigurationError(
            f"Probabilities must be an (items, classes) array with >= 2 classes, "
            f"not shape {rows.shape}"
        )
    if not np.isfinite(rows).all():
        raise ConfigurationError("Probabilities contain NaN or infinite values: check the model")
    return rows


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - (top probability - runner-up) per row: 0 when certain, 1 when the top two tie."""
    rows = _probability_rows(probabilities)
    top_two = -np.partition(-rows, 1, axis=1)[:, :2]
    return np.clip(1.0 - (top_two[:, 0] - top_two[:, 1]), 0.0, 1.0)


def entropy_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Each row's entropy over log(classes): 0 when certain, 1 when uniform."""
    rows = _probability_rows(probabilities)
    # 0 * log 0 counts as 0.
    terms = np.where(rows > 0, rows * np.log(np.where(rows > 0, rows, 1.0)), 0.0)
    return np.clip(-terms.sum(axis=1) / np.log(rows.shape[1]), 0.0, 1.0)


def token_uncertainty_to_item(per_token: Sequence[np.ndarray]) -> np.ndarray:
    """An item-level uncertainty for token tagging: the most uncertain token (word) of each item.

    The maximum, not the mean: one doubtful word is enough to make a text worth a look, and
    a mean would dilute it among the many confident "O" words of a long text. An item
    without tokens gets 0 (nothing to fix).
    """
    item_uncertainty = np.zeros(len(per_token))
    for i, tokens in enumerate(per_token):
        values = np.asarray(tokens, dtype=np.float64)
        if values.ndim != 1 or not np.isfinite(values).all():
            raise ConfigurationError(
                f"Item {i}'s token uncertainties must be a 1-D array of finite numbers"
            )
        if values.size:
            item_uncertainty[i] = values.max()
    return item_uncertainty


def _validated(uncertainty: np.ndarray) -> np.ndarray:
    scores = np.asarray(uncertainty, dtype=np.float64)
    if scores.ndim != 1:
        raise ConfigurationError(f"Uncertainty must be a 1-D array, not shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ConfigurationError("Uncertainty contains NaN or infinite values: check the model")
    return scores


Embeddings = Sequence[np.ndarray] | np.ndarray | Mapping[int, np.ndarray]


def _pool_vectors(embeddings: Embeddings, pool: np.ndarray) -> np.ndarray:
    """The pool's rows of `embeddings`, as float32: only those, because at 100k items a
    float32 copy of all of them would be half a gigabyte."""
    if isinstance(embeddings, Mapping) and not all(int(i) in embeddings for i in pool):
        raise ConfigurationError(
            "The embeddings must hold at least the rows of the pool (the "
            "pool_factor * diverse_head most uncertain items)"
        )
    vectors = np.asarray([embeddings[int(i)] for i in pool], dtype=np.float32)
    if vectors.ndim != 2:
        raise ConfigurationError(
            f"Embeddings must be (items, features) rows, not rows of shape {vectors.shape[1:]}"
        )
    if not np.isfinite(vectors).all():
        raise ConfigurationError("Embeddings contain NaN or infinite values: check the model")
    return vectors


def _by_uncertainty(uncertainty: np.ndarray) -> np.ndarray:
    # Stable, so that ties keep the items' own order.
    return np.argsort(-uncertainty, kind="stable")


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # A zero vector stays zero: it is at cosine distance 1 from everything.
    return vectors / np.where(norms > 0, norms, 1.0)


def _min_max(values: np.ndarray) -> np.ndarray:
    spread = values.max() - values.min()
    return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)


def _diverse_order(
    uncertainty: np.ndarray, vectors: np.ndarray, head: int, weight: float
) -> np.ndarray:
    """`head` positions into the pool, picked greedily by `(1-w) u_norm + w d_norm`.

    The pool comes sorted by descending uncertainty. d is the cosine distance (on
    L2-normalised embeddings) to the nearest item already picked, divided by its current
    maximum over the pool; u_norm is the uncertainty min-max scaled over the pool, so that
    both terms span [0, 1] among the candidates whatever the model's calibration.
    """
    unit = _unit_rows(vectors)
    uncertainty_term = (1.0 - weight) * _min_max(uncertainty)
    picked = np.zeros(len(uncertainty), dtype=bool)
    order = np.empty(head, dtype=np.int64)
    nearest = np.full(len(uncertainty), np.inf, dtype=np.float32)
    pick = 0  # the first pick is the most uncertain item
    # Each step's matrix-vector product is too small to gain from BLAS threads; on a busy
    # machine their hand-offs made the loop ten times slower.
    with threadpool_limits(limits=1, user_api="blas"):
        for step in range(head):
            order[step] = pick
            picked[pick] = True
            # One (pool, d) product per pick keeps the distance to the nearest pick up to date.
            np.minimum(nearest, np.maximum(1.0 - unit @ unit[pick], 0.0), out=nearest)
            farthest = nearest[~picked].max(initial=0.0)
            distance_term = weight * (
                nearest / farthest if farthest > 0 else np.zeros_like(nearest)
            )
            score = np.where(picked, -np.inf, uncertainty_term + distance_term)
            # argmax takes the first of equal scores: the more uncertain one.
            pick = int(np.argmax(score))
    return order


def rank_for_labelling(
    uncertainty: np.ndarray,
    embeddings: Embeddings | None,
    config: RankingConfig,
) -> np.ndarray:
    """The order to label the items in: a permutation of range(n), position 0 first.

    `uncertainty` is one number per item, higher = less sure (any scale); `embeddings` one
    row per item, only needed by `uncertainty+diversity` (without them it ranks by
    uncertainty and logs why), and only the most uncertain ones' are read: a mapping from
    positions to rows may hold just those (see `LabellingOrder`).
    """
    scores = _validated(uncertainty)
    if (
        embeddings is not None
        and not isinstance(embeddings, Mapping)
        and len(embeddings) != len(scores)
    ):
        raise ConfigurationError(
            f"Embeddings must be one row per uncertainty ({len(scores)}), not {len(embeddings)}"
        )
    if config.strategy == "random":
        return np.random.default_rng(config.seed).permutation(len(scores))
    by_uncertainty = _by_uncertainty(scores)
    if config.strategy == "uncertainty":
        return by_uncertainty
    if embeddings is None:
        logger.warning("No embeddings to rank by diversity: ranking by uncertainty alone")
        return by_uncertainty
    pool = by_uncertainty[: config.pool_factor * config.diverse_head]
    head = min(config.diverse_head, len(pool))
    if head == 0:
        return by_uncertainty
    vectors = _pool_vectors(embeddings, pool)
    diverse = pool[_diverse_order(scores[pool], vectors, head, config.diversity_weight)]
    rest = np.ones(len(scores), dtype=bool)
    rest[diverse] = False
    return np.concatenate([diverse, by_uncertainty[rest[by_uncertainty]]])


def queue_scores(order: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """Prediction scores whose ascending order follows `order`: the i-th item of `order` gets
    the i-th smallest of `confidences`, so the scores keep the model's confidence distribution.

    Items with equal confidences get equal scores; Label Studio's order among them is its own.
    """
    ranks = np.asarray(order)
    values = np.asarray(confidences, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ConfigurationError("Confidences must be a 1-D array of finite numbers")
    if (
        ranks.shape != values.shape
        or not np.issubdtype(ranks.dtype, np.integer)
        or not np.array_equal(np.sort(ranks), np.arange(len(values)))
    ):
        raise ConfigurationError(
            f"The order must be a permutation of the {len(values)} items' positions"
        )
    scores = np.empty_like(values)
    scores[ranks] = np.sort(values)
    return scores
