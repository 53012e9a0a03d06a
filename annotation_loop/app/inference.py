"""`run.py <cloud> --inference`: the inference pipeline on the cloud's stack, one run per
Label Studio project at a time, and what it did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from annotation_loop.app.environment import prepare_stack
from annotation_loop.app.project import project_spec
from annotation_loop.configs import InferenceParameters, config_path, load_parameters
from annotation_loop.settings import Settings

if TYPE_CHECKING:
    from annotation_loop.data.batch_tasks import BatchTask


@dataclass(frozen=True)
class InferenceOutcome:
    message: str
    batch: str | None = None  # None: every batch was synced already
    tasks: list[BatchTask] = field(default_factory=list)  # every task of the batch
    predictions: dict[int, Any] = field(default_factory=dict)  # task id -> predicted target
    model_version: str | None = None


def infer(
    cloud: str,
    settings: Settings,
    rerun: bool = False,
    batch: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> InferenceOutcome:
    """Syncs `batch` (default: batch_1 first, then with `rerun` the next one not synced) and
    pre-annotates its tasks with the production model; a second run on the same project
    waits for the first (`notify` hears about the wait)."""
    from annotation_loop.zenml_integration.leases import command_lease
    from pipelines import inference_pipeline

    parameters = load_parameters(config_path(settings.task, "inference"), InferenceParameters)
    with command_lease("inference", cloud, settings).held(settings.lease_wait, notify):
        prepare_stack(cloud, settings)
        run = inference_pipeline(
            project=project_spec(cloud, settings),
            model_name=settings.model_name,
            batch=batch,
            rerun=rerun,
            **parameters.model_dump(),
        )
    return _outcome(run.id, settings)


def _outcome(run_id: UUID, settings: Settings) -> InferenceOutcome:
    from annotation_loop.data.batch_choice import BatchChoice
    from annotation_loop.data.sync import SyncReport
    from annotation_loop.learning.pre_annotations import BatchPredictions
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import (
        label_studio_from_stack,
        run_outputs,
    )

    outputs = run_outputs(run_id)
    choice: BatchChoice = outputs["batch_choice"].load()
    project_url = label_studio_from_stack().project_url(choice.project_id)
    if choice.batch is None:
        return InferenceOutcome(f"{choice.reason}; {project_url}")
    report: SyncReport = outputs["batch_tasks"].load()
    predicted: BatchPredictions = outputs["batch_predictions"].load()
    task_type = get_task_type(settings.task)
    input_refs = {t.task_id: t.input_ref for t in report.tasks}
    predictions = {
        p.task_id: task_type.target_from_result(
            p.result, input_refs[p.task_id], settings.labels, where=f"task {p.task_id}"
        )
        for p in predicted.predictions
    }
    return InferenceOutcome(
        f"{choice.batch}: {report.created} new tasks ({report.already_present} already there), "
        + (
            f"{len(predictions)} pre-annotations by {predicted.model_version} "
            f"({predicted.already_predicted} tasks had them already)"
            if predicted.model_version
            else "no pre-annotations (no production model yet)"
        )
        + (
            f"; {len(report.problems)} problems, e.g. {report.problems[0]}"
            if report.problems
            else ""
        )
        + f"; {project_url}",
        batch=choice.batch,
        tasks=list(report.tasks),
        predictions=predictions,
        model_version=predicted.model_version,
    )
