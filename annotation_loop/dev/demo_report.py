"""The demo's report: one row per round of the loop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RoundRow:
    step: str
    labels_so_far: int
    model_version: str | None
    validation_score: float | None  # the task type's promotion metric
    promoted: bool | None
    # Pre-annotated units (items, or boxes for detection) the oracle kept unchanged.
    accepted_share: float | None


def accepted_title(unit_name: str) -> str:
    """The title of the acceptance column: "accepted" for whole items, else what was kept
    ("boxes kept"), so that a share of boxes is not read as a share of images."""
    return "accepted" if unit_name == "items" else f"{unit_name} kept"


def round_table(
    rows: Sequence[RoundRow], metric_title: str, accepted_column: str = "accepted"
) -> str:
    header = ("round", "step", "labels", "model", metric_title, "promoted", accepted_column)
    lines = [header]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    for number, row in enumerate(rows, start=1):
        lines.append(
            (
                str(number),
                row.step,
                str(row.labels_so_far),
                row.model_version or "-",
                fmt(row.validation_score),
                "-" if row.promoted is None else ("yes" if row.promoted else "no"),
                fmt(row.accepted_share),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)
