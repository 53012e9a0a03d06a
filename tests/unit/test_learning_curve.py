from annotation_loop.learning.learning_curve import (
    CurvePoint,
    StoppingRule,
    curve_table,
    plot_learning_curve,
)


def curve(*scores: float) -> list[CurvePoint]:
    return [CurvePoint(str(n + 1), 200 * (n + 1), score) for n, score in enumerate(scores)]


def test_a_curve_that_flattens_stops_paying_off():
    stopped, advice = StoppingRule(rounds=2, min_gain=0.01).advice(
        curve(0.60, 0.80, 0.845, 0.850, 0.852), "accuracy"
    )
    assert stopped
    assert "added 400 labels for +0.7 points of accuracy" in advice


def test_a_rising_curve_still_pays_off():
    stopped, advice = StoppingRule(rounds=2, min_gain=0.01).advice(
        curve(0.60, 0.70, 0.75, 0.80), "f1"
    )
    assert not stopped
    assert "+10.0 points of f1" in advice


def test_too_few_runs_is_too_early_to_tell():
    stopped, advice = StoppingRule(rounds=2).advice(curve(0.5, 0.9), "accuracy")
    assert not stopped
    assert advice.startswith("Too early to tell: 2 training runs")


def test_a_drop_counts_as_not_paying_off():
    assert StoppingRule(rounds=1, min_gain=0.0).advice(curve(0.8, 0.7), "accuracy")[0]


def test_table_shows_each_runs_change():
    lines = curve_table(curve(0.5, 0.625), "accuracy").splitlines()
    assert lines[0].split() == ["version", "labels", "accuracy", "change"]
    assert lines[2].split() == ["1", "200", "0.500"]
    assert lines[3].split() == ["2", "400", "0.625", "+12.5p"]


def test_plot_is_an_image():
    image = plot_learning_curve(curve(0.5, 0.6, 0.62), "accuracy", "Still paying off")
    assert image.size[0] > 300 and image.size[1] > 200
