"""Labels so far vs validation score, one point per training run, and when labelling more
stopped paying off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL.Image import Image

from annotation_loop.learning.plots import new_figure, to_image


@dataclass(frozen=True)
class CurvePoint:
    version: str  # the model version the run made
    labels: int  # labelled items it was trained and validated on
    score: float  # its validation score on the task type's promotion metric


@dataclass(frozen=True)
class StoppingRule:
    """Labelling stops paying off when the last `rounds` rounds together gained less than
    `min_gain` (absolute, e.g. 0.01 = one point of accuracy)."""

    rounds: int = 2
    min_gain: float = 0.01

    def advice(self, points: Sequence[CurvePoint], metric: str) -> tuple[bool, str]:
        """(whether it stopped paying off, one line saying why)."""
        if len(points) <= self.rounds:
            return False, (
                f"Too early to tell: {len(points)} training runs, the rule needs "
                f"{self.rounds + 1} (the last {self.rounds} compared with the one before)"
            )
        now, before = points[-1], points[-1 - self.rounds]
        gain = now.score - before.score
        added = now.labels - before.labels
        change = (
            f"the last {self.rounds} rounds added {added} labels for {gain * 100:+.1f} points "
            f"of {metric} ({before.score:.3f} -> {now.score:.3f})"
        )
        if gain < self.min_gain:
            return True, (
                f"Stopped paying off: {change}, under {self.min_gain * 100:g} point(s). Review "
                "the label-issue queue, or change the model, before labelling more"
            )
        return False, f"Still paying off: {change}"


def curve_table(points: Sequence[CurvePoint], metric: str) -> str:
    header = f"{'version':>8} {'labels':>7} {metric:>10} {'change':>8}"
    lines = [header, "-" * len(header)]
    for previous, point in zip([None, *points[:-1]], points, strict=True):
        change = f"{(point.score - previous.score) * 100:+7.1f}p" if previous else ""
        lines.append(f"{point.version:>8} {point.labels:>7} {point.score:>10.3f} {change:>8}")
    return "\n".join(lines)


def plot_learning_curve(points: Sequence[CurvePoint], metric: str, advice: str) -> Image:
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    labels = [p.labels for p in points]
    scores = [p.score for p in points]
    axes.plot(labels, scores, marker="o")
    for point in points:
        axes.annotate(
            f"v{point.version}",
            (point.labels, point.score),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    axes.set_xlabel("labelled items")
    axes.set_ylabel(f"validation {metric}")
    axes.set_title("Learning curve", fontsize=11)
    axes.grid(alpha=0.3)
    figure.text(0.5, 0.01, advice, ha="center", fontsize=7, wrap=True)
    figure.subplots_adjust(bottom=0.2)
    return to_image(figure)
