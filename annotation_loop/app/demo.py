"""`run.py demo`: the whole loop, unattended, on local stand-ins, with the oracle annotator
in place of people: train -> infer batch_1 -> oracle -> train --rerun -> infer --rerun -> ..."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from annotation_loop.app.environment import prepare_stack
from annotation_loop.app.inference import InferenceOutcome, infer
from annotation_loop.app.training import train
from annotation_loop.errors import LoopError
from annotation_loop.settings import Settings

if TYPE_CHECKING:
    from annotation_loop.dev.oracle import OracleReport, SimulatedAnnotator
    from annotation_loop.quality.sampling import LabelQuality


def label_batch_with_oracle(
    client: Any,
    settings: Settings,
    cloud: str,
    inference: InferenceOutcome,
    truth: dict[str, Any],
    annotators: Sequence[SimulatedAnnotator] | None = None,
    quality: LabelQuality | None = None,
) -> OracleReport:
    """The oracle annotates every task of the inferred batch, starting from its predictions:
    `annotators` (default: one who always gives the truth), several per task in `quality`'s
    overlap set (default: one per task)."""
    from annotation_loop.dev.oracle import ONE_CAREFUL_ANNOTATOR, OracleTask, label_with_truth
    from annotation_loop.task_types import get_task_type

    prefix = settings.data_source(cloud).dataset_uri + "/"
    return label_with_truth(
        client,
        get_task_type(settings.task),
        [
            OracleTask(
                task_id=task.task_id,
                key=task.uri.removeprefix(prefix),
                input_ref=task.input_ref,
                predicted=inference.predictions.get(task.task_id),
                content_hash=task.content_hash,
            )
            for task in inference.tasks
        ],
        truth,
        annotators=ONE_CAREFUL_ANNOTATOR if annotators is None else annotators,
        quality=quality,
        labels=settings.labels,
    )


def run_demo(
    cloud: str, settings: Settings, batches: int, batch_size: int, say: Callable[[str], None]
) -> None:
    """Seeds `batches` batches of demo items, then runs the loop round by round; `say`
    prints each step's outcome and the final table."""
    from zenml.client import Client

    from annotation_loop.app.quality import label_quality_report
    from annotation_loop.clouds import local_services
    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.dev import demo_report, oracle
    from annotation_loop.dev.demo_guard import (
        local_login,
        require_demo_label_studio,
        require_own_label_studio_process,
        require_project_zenml_store,
        require_running_zenml_server,
        zenml_login,
    )
    from annotation_loop.dev.services import ZENML_SERVER_NAME, ZenmlServer, start_services
    from annotation_loop.task_types import get_task_type
    from annotation_loop.task_types.capabilities import demo_data_of
    from annotation_loop.zenml_integration.model_registry import label_studio_from_stack

    # Before anything is started, written or deleted.
    require_demo_label_studio(settings, "demo")
    require_project_zenml_store(settings)
    task_type = get_task_type(settings.task)
    demo_data = demo_data_of(task_type)  # before anything starts: a task type may have none
    # ZenML's server first: the pipelines run against it, so the dashboard shows them.
    start_services(settings, (ZENML_SERVER_NAME, *local_services([cloud])))
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    say(
        f"Seeding {batches} batches of {batch_size} items for {task_type.description} in "
        f"{store.source.dataset_uri}"
    )
    truth = demo_data.seed_demo(store, batches, batch_size, seed=0)

    # A demo starts from scratch: no project, no model versions from an earlier demo.
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    require_own_label_studio_process(settings)
    require_running_zenml_server(settings)
    label_config = task_type.label_config(settings.labels)
    client.delete_project(client.get_or_create_project(settings.project_name, label_config))
    with contextlib.suppress(KeyError):
        Client().delete_model(settings.model_name)

    # The demo's annotators, three to each task of the overlap set: their agreement,
    # reliability and the anchoring check show in `run.py quality`.
    annotators = (
        oracle.SimulatedAnnotator("careful"),
        oracle.SimulatedAnnotator("hasty", error_rate=0.1),
        oracle.SimulatedAnnotator("trusting", error_rate=0.05, accepts_pre_annotations=True),
    )
    rows: list[demo_report.RoundRow] = []
    outcome = train(cloud, settings, rerun=False, notify=say)
    say(outcome.message)
    rows.append(demo_report.RoundRow("train", 0, None, None, None, None))
    for round_number in range(1, batches):
        inference = infer(cloud, settings, rerun=round_number > 1, notify=say)
        say(inference.message)
        report = label_batch_with_oracle(
            client, settings, cloud, inference, truth, annotators, settings.label_quality
        )
        outcome = train(cloud, settings, rerun=True, notify=say)
        say(outcome.message)
        rows.append(
            demo_report.RoundRow(
                f"{inference.batch} labelled, train --rerun",
                outcome.labelled_items,
                outcome.model_version,
                outcome.validation_score,
                outcome.promoted,
                report.acceptance_rate,
            )
        )
    waiting = infer(cloud, settings, rerun=True, notify=say)
    say(waiting.message)
    kept = demo_report.accepted_title(oracle.unit_name(task_type))
    say("\n" + demo_report.round_table(rows, f"val. {task_type.promotion_metric}", kept))
    with contextlib.suppress(LoopError):  # no round trained: nothing to report
        say("\nLabel quality (python run.py quality):\n" + label_quality_report(settings))
    if waiting.batch:
        say(f"\n{waiting.batch} is waiting for people, pre-annotated by {waiting.model_version}.")
    say(
        "Open the project: "
        f"{client.project_url(client.get_or_create_project(settings.project_name, label_config))} "
        f"(login {local_login(settings)})"
    )
    say(
        "ZenML dashboard (runs, artifacts, learning curve, confusion matrix): "
        f"{ZenmlServer(settings).url} (login {zenml_login(settings)})"
    )
