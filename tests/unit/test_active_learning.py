"""Ranking unlabelled items: uncertainty measures, strategies, and Label Studio queue scores."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from pydantic import ValidationError

from annotation_loop.errors import ConfigurationError
from annotation_loop.labelstudio.queues import LabellingOrder
from annotation_loop.learning.active_learning import (
    STRATEGIES,
    RankingConfig,
    entropy_uncertainty,
    margin_uncertainty,
    queue_scores,
    rank_for_labelling,
    token_uncertainty_to_item,
)
from annotation_loop.task_types import Prediction

CERTAIN = [1.0, 0.0, 0.0, 0.0]
UNIFORM = [0.25, 0.25, 0.25, 0.25]


def clustered_items(per_cluster: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uncertainty, embeddings, cluster of each item): three tight clusters of near-duplicates
    along different axes and at different scales, cluster 0 the most uncertain, 2 the least."""
    rng = np.random.default_rng(0)
    cluster = np.repeat([0, 1, 2], per_cluster)
    scale = np.array([1.0, 5.0, 0.2])[cluster, None]
    embeddings = scale * (np.eye(8)[cluster] + 0.01 * rng.normal(size=(len(cluster), 8)))
    uncertainty = np.array([0.9, 0.7, 0.5])[cluster] + 0.05 * rng.random(len(cluster))
    order = rng.permutation(len(cluster))  # so that no result can come from the input order
    return uncertainty[order], embeddings[order], cluster[order]


def test_strategies_are_the_literal_values() -> None:
    assert STRATEGIES == ("random", "uncertainty", "uncertainty+diversity")


def test_margin_uncertainty_of_known_rows() -> None:
    result = margin_uncertainty(np.array([CERTAIN, UNIFORM, [0.6, 0.3, 0.1, 0.0]]))
    np.testing.assert_allclose(result, [0.0, 1.0, 0.7])


def test_entropy_uncertainty_of_known_rows() -> None:
    result = entropy_uncertainty(np.array([CERTAIN, UNIFORM, [0.5, 0.5, 0.0, 0.0]]))
    # Two equally likely classes out of four: log 2 / log 4.
    np.testing.assert_allclose(result, [0.0, 1.0, 0.5])


@pytest.mark.parametrize("measure", [margin_uncertainty, entropy_uncertainty])
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.ones((3, 1)), ">= 2 classes"),
        (np.ones(3), ">= 2 classes"),
        (np.array([[0.5, np.nan]]), "NaN"),
    ],
)
def test_uncertainty_measures_reject_bad_rows(
    measure: Callable[[np.ndarray], np.ndarray], rows: np.ndarray, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        measure(rows)


def test_token_uncertainty_takes_each_items_most_uncertain_token() -> None:
    result = token_uncertainty_to_item([np.array([0.1, 0.8, 0.3]), np.array([]), np.array([0.2])])
    np.testing.assert_allclose(result, [0.8, 0.0, 0.2])


def test_token_uncertainty_rejects_nan() -> None:
    with pytest.raises(ConfigurationError, match="Item 1"):
        token_uncertainty_to_item([np.array([0.1]), np.array([np.nan])])


def test_uncertainty_strategy_puts_the_least_sure_first() -> None:
    uncertainty = np.random.default_rng(1).random(50)
    order = rank_for_labelling(uncertainty, None, RankingConfig(strategy="uncertainty"))
    np.testing.assert_array_equal(order, np.argsort(-uncertainty, kind="stable"))
    assert np.all(np.diff(uncertainty[order]) <= 0)


def test_uncertainty_ties_keep_the_items_order() -> None:
    order = rank_for_labelling(
        np.array([0.2, 0.5, 0.2, 0.5]), None, RankingConfig(strategy="uncertainty")
    )
    np.testing.assert_array_equal(order, [1, 3, 0, 2])


def test_random_strategy_is_a_seeded_permutation() -> None:
    uncertainty = np.linspace(0, 1, 100)
    first, again, other = (
        rank_for_labelling(uncertainty, None, RankingConfig(strategy="random", seed=seed))
        for seed in (3, 3, 4)
    )
    np.testing.assert_array_equal(np.sort(first), np.arange(100))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_pure_uncertainty_spends_the_head_on_one_cluster() -> None:
    uncertainty, embeddings, cluster = clustered_items()
    order = rank_for_labelling(uncertainty, embeddings, RankingConfig(strategy="uncertainty"))
    assert set(cluster[order[:20]]) == {0}


def test_diversity_covers_every_cluster_in_the_first_picks() -> None:
    uncertainty, embeddings, cluster = clustered_items()
    config = RankingConfig(diversity_weight=0.5, diverse_head=10)
    order = rank_for_labelling(uncertainty, embeddings, config)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(cluster)))
    # The most uncertain item first, then the most uncertain of each cluster not yet covered.
    assert order[0] == np.argmax(uncertainty)
    assert sorted(cluster[order[:3]]) == [0, 1, 2]
    # Beyond the head, the queue follows uncertainty.
    assert np.all(np.diff(uncertainty[order[10:]]) <= 0)


def test_zero_diversity_weight_is_the_uncertainty_order() -> None:
    uncertainty, embeddings, _ = clustered_items()
    diverse = rank_for_labelling(
        uncertainty, embeddings, RankingConfig(diversity_weight=0.0, diverse_head=30)
    )
    plain = rank_for_labelling(uncertainty, embeddings, RankingConfig(strategy="uncertainty"))
    np.testing.assert_array_equal(diverse, plain)


def test_head_is_picked_from_the_most_uncertain_pool_only() -> None:
    uncertainty, embeddings, cluster = clustered_items()
    # A pool of 2 * 10 items holds cluster 0 alone, so no other cluster can enter the head.
    config = RankingConfig(diversity_weight=1.0, diverse_head=10, pool_factor=2)
    order = rank_for_labelling(uncertainty, embeddings, config)
    assert set(cluster[order[:20]]) == {0}


def test_diversity_without_embeddings_falls_back_to_uncertainty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uncertainty = np.array([0.1, 0.9, 0.5])
    order = rank_for_labelling(uncertainty, None, RankingConfig())
    np.testing.assert_array_equal(order, [1, 2, 0])
    assert "No embeddings" in caplog.text


@pytest.mark.parametrize("n", [0, 1, 2])
def test_diversity_handles_tiny_inputs(n: int) -> None:
    order = rank_for_labelling(np.linspace(0, 1, n), np.ones((n, 4)), RankingConfig())
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_diversity_head_on_a_realistic_pool_returns_a_permutation() -> None:
    rng = np.random.default_rng(0)
    uncertainty = rng.random(5000)
    embeddings = rng.normal(size=(5000, 384)).astype(np.float32)
    order = rank_for_labelling(uncertainty, embeddings, RankingConfig())
    np.testing.assert_array_equal(np.sort(order), np.arange(5000))
    # The head is not simply the uncertainty order: diversity changed it.
    assert not np.array_equal(order[:1000], np.argsort(-uncertainty)[:1000])


def test_queue_scores_ascend_along_the_order_and_keep_the_confidences() -> None:
    rng = np.random.default_rng(2)
    confidences = rng.random(40)
    order = rng.permutation(40)
    scores = queue_scores(order, confidences)
    assert np.all(np.diff(scores[order]) > 0)
    np.testing.assert_array_equal(np.sort(scores), np.sort(confidences))


@pytest.mark.parametrize(
    ("uncertainty", "embeddings", "message"),
    [
        (np.array([0.1, np.nan]), None, "Uncertainty contains NaN"),
        (np.ones((2, 2)), None, "1-D"),
        (np.ones(3), np.ones((2, 4)), "one row per uncertainty"),
        (np.ones(2), np.array([[0.0, np.inf], [1.0, 1.0]]), "Embeddings contain NaN"),
    ],
)
def test_ranking_rejects_bad_inputs(
    uncertainty: np.ndarray, embeddings: np.ndarray | None, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        rank_for_labelling(uncertainty, embeddings, RankingConfig())


@pytest.mark.parametrize(
    "settings",
    [
        {"strategy": "smart"},
        {"diversity_weight": 1.5},
        {"diversity_weight": -0.1},
        {"diverse_head": -1},
        {"pool_factor": 0},
        {"pool_facotr": 2},
    ],
)
def test_ranking_config_rejects_bad_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as error:
        RankingConfig(**settings)  # type: ignore[arg-type]
    assert error.value.errors()[0]["loc"] == tuple(settings)


@pytest.mark.parametrize(
    ("order", "confidences"),
    [
        (np.array([0, 0, 1]), np.ones(3)),
        (np.array([0, 1]), np.ones(3)),
        (np.array([0.0, 1.0]), np.ones(2)),
    ],
)
def test_queue_scores_reject_an_order_that_is_no_permutation(
    order: np.ndarray, confidences: np.ndarray
) -> None:
    with pytest.raises(ConfigurationError, match="permutation"):
        queue_scores(order, confidences)


@pytest.mark.parametrize(
    "config",
    [
        RankingConfig(diversity_weight=0.5, diverse_head=4, pool_factor=5),
        RankingConfig(diversity_weight=1.0, diverse_head=100),  # a pool of every item
        RankingConfig(diverse_head=0),
        RankingConfig(strategy="uncertainty"),
        RankingConfig(strategy="random", seed=3),
    ],
)
def test_streamed_labelling_order_equals_ranking_everything_at_once(
    config: RankingConfig,
) -> None:
    """Keeping only the pool's embeddings while predictions stream by gives the scores of
    ranking every item with all embeddings, ties in uncertainty included."""
    uncertainty, embeddings, _ = clustered_items()
    embeddings = embeddings.astype(np.float16)  # as the models hand them over
    uncertainty[::7] = 0.8  # ties at the pool's edge: the earlier item must win, as in a sort
    confidence = 1.0 - uncertainty / 2
    streamed = LabellingOrder(config)
    for u, c, e in zip(uncertainty, confidence, embeddings, strict=True):
        streamed.add(Prediction("k", "x", float(c), float(u), e))
    whole = queue_scores(rank_for_labelling(uncertainty, embeddings, config), confidence)
    np.testing.assert_allclose(streamed.scores(), whole)
    assert len(streamed._pool) <= config.pool_factor * config.diverse_head


def test_labelling_order_without_embeddings_ranks_by_uncertainty() -> None:
    order = LabellingOrder(RankingConfig())
    for u in (0.1, 0.9, 0.5):
        order.add(Prediction("k", "x", 1.0 - u, u, None))
    assert order.scores() == pytest.approx([0.9, 0.1, 0.5])
    assert LabellingOrder(RankingConfig()).scores() == []


def test_rank_for_labelling_names_missing_pool_rows() -> None:
    uncertainty, embeddings, _ = clustered_items()
    config = RankingConfig(diverse_head=2, pool_factor=2)
    pool = np.argsort(-uncertainty, kind="stable")[:4]
    partial = {int(i): embeddings[i] for i in pool[:3]}
    with pytest.raises(ConfigurationError, match="at least the rows of the pool"):
        rank_for_labelling(uncertainty, partial, config)
