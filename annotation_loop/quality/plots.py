"""The agreement report as a picture: annotator pairs as a heatmap, classes as bars."""

from __future__ import annotations

import numpy as np
from PIL import Image

from annotation_loop.learning.plots import new_figure, to_image
from annotation_loop.quality.agreement import MEASURE_NAMES, AgreementReport


def plot_agreement(report: AgreementReport) -> Image.Image:
    """A PNG-ready figure of `report`: each pair of annotators' agreement as a symmetric
    annotator x annotator heatmap (blank where they share no task or it is undefined), and,
    for measures with classes, each class's agreement as a bar; titled with the overall
    figure."""
    annotators = sorted({name for p in report.pairs for name in (p.annotator_a, p.annotator_b)})
    with_classes = bool(report.per_class)
    bars_width = max(4.0, 0.6 * len(report.per_class) + 1.5) if with_classes else 0.0
    figure = new_figure(max(4.0, 0.6 * len(annotators) + 2.5) + bars_width, 4.5)
    heatmap = figure.add_subplot(1, 2 if with_classes else 1, 1)
    index = {name: i for i, name in enumerate(annotators)}
    values = np.full((len(annotators), len(annotators)), np.nan)
    for pair in report.pairs:
        if pair.value is not None:
            a, b = index[pair.annotator_a], index[pair.annotator_b]
            values[a, b] = values[b, a] = pair.value
    # Kappa and alpha run from -1 (systematic disagreement); F1 and 1 - WER from 0.
    lowest = -1.0 if report.pair_measure == "cohen_kappa" else 0.0
    image = heatmap.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=lowest, vmax=1.0)
    for (row, column), value in np.ndenumerate(values):
        if not np.isnan(value):
            heatmap.text(column, row, f"{value:.2f}", ha="center", va="center", color="white")
    heatmap.set_xticks(range(len(annotators)), annotators)
    heatmap.set_yticks(range(len(annotators)), annotators)
    heatmap.set_xlabel("Annotator")
    heatmap.set_ylabel("Annotator")
    heatmap.set_title(f"{MEASURE_NAMES.get(report.pair_measure, report.pair_measure)} per pair")
    figure.colorbar(image, ax=heatmap)
    if with_classes:
        bars = figure.add_subplot(1, 2, 2)
        classes = list(report.per_class)
        shown = [report.per_class[label] for label in classes]
        heights = [value or 0.0 for value in shown]
        drawn = bars.bar(range(len(classes)), heights, color="tab:blue")
        bars.bar_label(drawn, labels=["-" if v is None else f"{v:.2f}" for v in shown])
        bars.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 8 else 0)
        bars.set_ylim(min(0.0, *heights) - 0.05, 1.1)
        bars.set_xlabel("Class")
        bars.set_ylabel(MEASURE_NAMES.get(report.measure, report.measure))
        bars.set_title("Per class")
    overall = "-" if report.overall is None else f"{report.overall:.2f}"
    figure.suptitle(
        f"{MEASURE_NAMES.get(report.measure, report.measure)} {overall} on {report.tasks} "
        f"overlap tasks ({report.annotations} annotations)"
    )
    return to_image(figure)
