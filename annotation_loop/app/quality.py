"""`run.py quality`: how far the annotators agree, which of them to trust, and whether
pre-annotations sway them, per training round and in detail for the newest one."""

from __future__ import annotations

from typing import Any

from annotation_loop.errors import LoopError
from annotation_loop.settings import Settings


def label_quality_report(settings: Settings) -> str:
    """A table of every round's figures (from the model versions' `label_quality`
    metadata), then the newest snapshot's report in full."""
    from pydantic import TypeAdapter

    from annotation_loop.quality.consensus import ConsensusMethod
    from annotation_loop.quality.report import measure_label_quality
    from annotation_loop.quality.sampling import LabelQuality
    from annotation_loop.zenml_integration.model_registry import (
        label_quality_history,
        latest_snapshot,
    )

    history = label_quality_history(settings.model_name)
    snapshot = latest_snapshot(settings.model_name)
    if not history or snapshot is None:
        raise LoopError(
            f"No training run of {settings.model_name!r} measured label quality yet: run "
            "`python run.py <cloud> --train`"
        )
    # The newest round again, as it was measured: the settings may have changed since.
    recorded = history[-1][1]
    quality = (
        LabelQuality.model_validate(recorded["quality"])
        if "quality" in recorded
        else settings.label_quality  # recorded before the settings were
    )
    consensus: ConsensusMethod = TypeAdapter(ConsensusMethod).validate_python(recorded["consensus"])
    report = measure_label_quality(snapshot, quality, consensus)
    names, unnamed = annotator_emails()
    return "\n".join(
        [
            history_table(history),
            "",
            f"Version {history[-1][0]}:",
            *report.lines(names),
            *([unnamed] if unnamed else []),
        ]
    )


def annotator_emails() -> tuple[dict[str, str], str | None]:
    """(emails by Label Studio user id, None), or ({}, why not) when Label Studio cannot
    say: the figures come from ZenML alone, and only the names need it."""
    from annotation_loop.zenml_integration.model_registry import label_studio_from_stack

    try:
        return label_studio_from_stack().user_emails(), None
    except LoopError as reason:
        return {}, f"(Annotators by Label Studio user id: {reason})"


def history_table(history: list[tuple[str, dict[str, Any]]]) -> str:
    header = (
        "version",
        "overlap tasks",
        "agreement",
        "undecided",
        "agree w/o pre-annotation",
        "agree with",
        "wrong suggestions kept",
    )
    rows = [header]
    for version, recorded in history:
        agreement = recorded.get("agreement", {})
        anchoring = recorded.get("anchoring", {})
        measure = agreement.get("measure", "")
        rows.append(
            (
                version,
                str(agreement.get("tasks", 0)),
                _figure(agreement.get(measure), measure),
                str(recorded.get("undecided", 0)),
                _share(anchoring.get("control_agreement")),
                _share(anchoring.get("pre_annotated_agreement")),
                _share(anchoring.get("wrong_suggestions_kept")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _figure(value: Any, measure: str) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.2f} {measure}"


def _share(value: Any) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.0%}"
