"""Drives the continuous-annotation loop.

python run.py up | down | status                 local Label Studio + S3 stand-in
python run.py local --train [--rerun]            fetch new labels, fine-tune, maybe promote
python run.py aws --inference [--rerun]          sync the next batch, push pre-annotations
python run.py demo [--cloud aws] [--task ner]    the whole loop with an oracle annotator
python run.py serve [--cloud aws]                the production model as Label Studio's ML backend
python run.py curve                              the learning curve, and whether labelling pays off

`--task` (or LOOP_TASK) picks the task type: image (default), text or ner.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from annotation_loop.errors import LoopError
from annotation_loop.settings import CLOUDS, PROJECT_ROOT, Settings
from annotation_loop.task_types import TASK_TYPES

if TYPE_CHECKING:
    from annotation_loop.data.batch_tasks import BatchTask

CONFIGS = PROJECT_ROOT / "configs"
F = TypeVar("F", bound=Callable[..., Any])


def load_settings() -> Settings:
    """Settings, plus the process environment ZenML and the storage clients read."""
    from annotation_loop.private_files import OWNER_ONLY_UMASK, private_dir

    settings = Settings()
    # What this process writes (ZenML's store with its secrets, logs, artifacts) is its
    # owner's only, and so is the state folder it lives in.
    os.umask(OWNER_ONLY_UMASK)
    private_dir(settings.state_dir)
    # Before zenml is imported: keep ZenML's state inside the project, make no calls home.
    os.environ.setdefault("ZENML_CONFIG_PATH", str(settings.zenml_config_path))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.update(settings.client_environment())
    return settings


def user_errors(func: F) -> F:
    """Prints a LoopError as one line (no traceback) and exits 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LoopError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


# -- the loop ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingOutcome:
    message: str
    model_version: str | None = None
    labelled_items: int = 0
    metric: str | None = None  # the task type's promotion metric
    validation_score: float | None = None
    promoted: bool | None = None


@dataclass(frozen=True)
class InferenceOutcome:
    message: str
    batch: str | None = None
    tasks: list[BatchTask] = field(default_factory=list)  # every task of the batch
    predictions: dict[int, Any] = field(default_factory=dict)  # task id -> predicted target
    model_version: str | None = None


def prepare_stack(cloud: str, settings: Settings) -> None:
    from zenml.client import Client

    from annotation_loop.zenml_integration.stacks import register_stack

    if not (PROJECT_ROOT / ".zen").exists():
        Client.initialize(root=PROJECT_ROOT)
    register_stack(cloud, settings)


def run_pipeline(pipeline: Any, **params: Any) -> Any:
    """Runs a pipeline; a step that failed with a LoopError re-raises it as a one-liner."""
    from zenml.client import Client
    from zenml.enums import ExecutionStatus
    from zenml.utils import source_utils

    try:
        return pipeline(**params)
    except RuntimeError:
        failed_run = Client().get_pipeline(pipeline.name).last_run
        for step in failed_run.steps.values():
            info = step.exception_info
            if step.status != ExecutionStatus.FAILED or info is None or not info.source:
                continue
            error_class = source_utils.load(info.source)
            if isinstance(error_class, type) and issubclass(error_class, LoopError):
                raise error_class(info.message) from None
        raise


def under_lease(command: str) -> Callable[[F], F]:
    """Runs `run_training` or `run_inference` holding its lease (per model / per Label Studio
    project, in the ZenML store every machine running the loop shares): a second run at once
    waits up to LOOP_LEASE_WAIT seconds for the first, then stops with one line."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(cloud: str, settings: Settings, rerun: bool, **options: Any) -> Any:
            from annotation_loop.zenml_integration.leases import command_lease

            lease = command_lease(command, cloud, settings)
            with lease.held(settings.lease_wait, functools.partial(click.echo, err=True)):
                return func(cloud, settings, rerun, **options)

        return wrapper  # type: ignore[return-value]

    return decorate


@under_lease("train")
def run_training(cloud: str, settings: Settings, rerun: bool) -> TrainingOutcome:
    from zenml import Model

    from annotation_loop.learning.annotations import merge_changes
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import (
        label_studio_from_stack,
        previous_snapshot,
    )
    from pipelines import training_pipeline

    task_type = get_task_type(settings.task)
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    project_id = client.get_or_create_project(
        settings.project_name, task_type.label_config(settings.labels)
    )
    previous = previous_snapshot(settings.model_name, project_id, settings.task, settings.labels)
    # A cheap incremental look before paying for a pipeline run and a model version.
    preview = merge_changes(
        previous, client.iter_tasks_updated_since(project_id, previous.watermark)
    )
    if not preview.items:
        return TrainingOutcome(
            f"No annotations yet in {settings.project_name!r}: label some tasks at "
            f"{client.project_url(project_id)}, then run --train again"
        )
    if preview.last_merge.changed == 0 and previous.items:
        return TrainingOutcome(
            f"No new annotations since {previous.watermark}: nothing to train "
            f"({len(previous.items)} labelled items, all already used)",
            labelled_items=len(previous.items),
        )
    pipeline = training_pipeline.with_options(
        config_path=str(CONFIGS / settings.task / "training.yaml"),
        model=Model(
            name=settings.model_name,
            description=(
                f"{task_type.description.capitalize()} model for the Label Studio project "
                f"{settings.project_name!r}"
            ),
            tags=["annotation-loop", cloud, settings.task],
        ),
    )
    run = run_pipeline(
        pipeline,
        task=settings.task,
        project_name=settings.project_name,
        labels=settings.labels,
        source=settings.data_source(cloud),
        continue_from_production=rerun,
    )
    metrics = run.steps["evaluate_and_promote"].outputs["validation_metrics"][0].load()
    version = run.model_version.name if run.model_version else None
    return TrainingOutcome(
        f"Trained {settings.model_name}:{version} on {metrics['labelled_items']} labelled items: "
        f"validation {metrics['metric']} {metrics['score']:.3f}, "
        + ("promoted to production" if metrics["promoted"] else "production unchanged"),
        model_version=version,
        labelled_items=metrics["labelled_items"],
        metric=metrics["metric"],
        validation_score=metrics["score"],
        promoted=metrics["promoted"],
    )


@under_lease("inference")
def run_inference(
    cloud: str, settings: Settings, rerun: bool, batch: str | None = None
) -> InferenceOutcome:
    from zenml import Model
    from zenml.enums import ModelStages

    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.data.sync import choose_batch, ensure_project
    from annotation_loop.data.task_index import refresh_task_index
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import (
        label_studio_from_stack,
        latest_task_index,
        production_version,
    )
    from pipelines import inference_pipeline

    task_type = get_task_type(settings.task)
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    store = ObjectStore(settings.data_source(cloud))
    batches = store.list_batches()  # first: a storage connection needs objects to exist
    project_id = ensure_project(client, store, settings.project_name, settings.labels, task_type)
    previous_index = latest_task_index(client.url, project_id)
    synced = refresh_task_index(client, project_id, previous_index).batches()
    batch = choose_batch(store, batches, synced, rerun, requested=batch)
    if batch is None:
        return InferenceOutcome(
            f"Every batch under {store.source.dataset_uri} is synced already: add the next "
            "batch_N/ folder to continue"
        )
    options: dict[str, Any] = {"config_path": str(CONFIGS / settings.task / "inference.yaml")}
    if production_version(settings.model_name) is not None:
        options["model"] = Model(name=settings.model_name, version=ModelStages.PRODUCTION)
    run = run_pipeline(
        inference_pipeline.with_options(**options),
        task=settings.task,
        source=settings.data_source(cloud),
        batch=batch,
        project_name=settings.project_name,
        labels=settings.labels,
    )
    report = run.steps["sync_batch"].outputs["batch_tasks"][0].load()
    predicted = run.steps["predict_batch"].outputs["batch_predictions"][0].load()
    input_refs = {t.task_id: t.input_ref for t in report.tasks}
    predictions = {
        p.task_id: task_type.target_from_result(
            p.result, input_refs[p.task_id], settings.labels, where=f"task {p.task_id}"
        )
        for p in predicted.predictions
    }
    return InferenceOutcome(
        f"{batch}: {report.created} new tasks ({report.already_present} already there), "
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
        + f"; {client.project_url(project_id)}",
        batch=batch,
        tasks=list(report.tasks),
        predictions=predictions,
        model_version=predicted.model_version,
    )


# -- command line --------------------------------------------------------------------------
@click.group()
def cli() -> None:
    """The continuous-annotation loop on ZenML and Label Studio."""


# The local stand-ins each cloud needs, and the setting that points the cloud at them.
STAND_INS = {
    "local": ("label_studio",),
    "aws": ("label_studio", "s3"),
    "gcp": ("label_studio", "gcs"),
    "azure": ("label_studio", "azure"),
}
USE_STAND_IN = {"aws": "LOOP_LOCAL_S3", "gcp": "LOOP_LOCAL_GCS", "azure": "LOOP_LOCAL_AZURE"}


def stand_ins(clouds: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for cloud in clouds for name in STAND_INS[cloud]))


@cli.command()
@click.option(
    "--cloud",
    "clouds",
    type=click.Choice(CLOUDS),
    multiple=True,
    default=("local", "aws"),
    show_default=True,
    help="Start the stand-ins of these clouds (repeatable).",
)
@user_errors
def up(clouds: tuple[str, ...]) -> None:
    """Start the local Label Studio and cloud stand-ins; reuse them if already up."""
    from annotation_loop.dev.demo_guard import local_login, require_demo_label_studio
    from annotation_loop.dev.services import start_services

    settings = load_settings()
    require_demo_label_studio(settings, "up")
    for status in start_services(settings, stand_ins(clouds)):
        click.echo(f"{status.name}: {status.url} (pid {status.pid}, log {status.log_file})")
    click.echo(f"Label Studio login: {local_login(settings)}")


@cli.command()
@user_errors
def down() -> None:
    """Stop the local services."""
    from annotation_loop.dev.services import stop_services

    stop_services(load_settings())
    click.echo("Local services stopped.")


@cli.command()
@user_errors
def status() -> None:
    """Show whether the local services are up."""
    from annotation_loop.dev.services import services_status

    for s in services_status(load_settings()):
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        click.echo(f"{s.name:13} {state:22} {s.url}  log: {s.log_file}")


task_option = click.option(
    "--task",
    type=click.Choice(list(TASK_TYPES)),
    default=None,
    help="The task type: image, text or ner (default: LOOP_TASK, else image).",
)


def use_task(task: str | None) -> None:
    if task is not None:
        os.environ["LOOP_TASK"] = task


def cloud_command(cloud: str) -> click.Command:
    @click.option("--train", "mode", flag_value="train", help="Run the training pipeline.")
    @click.option("--inference", "mode", flag_value="inference", help="Run inference.")
    @click.option(
        "--rerun",
        is_flag=True,
        help="Training: continue from the production model. Inference: next unsynced batch.",
    )
    @click.option(
        "--batch",
        default=None,
        help="Inference: this batch (e.g. batch_2), synced again if it was: only what it lacks "
        "is added.",
    )
    @task_option
    @user_errors
    def command(mode: str | None, rerun: bool, batch: str | None, task: str | None) -> None:
        if mode is None:
            raise click.UsageError("choose --train or --inference")
        if batch is not None and mode != "inference":
            raise click.UsageError("--batch goes with --inference")
        use_task(task)
        settings = load_settings()
        if mode == "train":
            click.echo(run_training(cloud, settings, rerun).message)
        else:
            click.echo(run_inference(cloud, settings, rerun, batch=batch).message)

    command.__doc__ = f"Run the loop on the {cloud!r} stack."
    return click.command(name=cloud)(command)


for _cloud in CLOUDS:
    cli.add_command(cloud_command(_cloud))


@cli.command()
@click.option("--cloud", type=click.Choice(CLOUDS), default="local", show_default=True)
@task_option
@click.option("--batches", default=3, show_default=True, help="Batches of demo items to seed.")
@click.option("--batch-size", default=200, show_default=True)
@user_errors
def demo(cloud: str, task: str | None, batches: int, batch_size: int) -> None:
    """The whole loop, unattended, on local stand-ins, with an oracle annotator."""
    if cloud in USE_STAND_IN:
        os.environ[USE_STAND_IN[cloud]] = "true"
    use_task(task)
    run_demo(cloud, load_settings(), batches, batch_size)


@cli.command()
@click.option("--cloud", type=click.Choice(CLOUDS), default="local", show_default=True)
@task_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the backend listens.")
@click.option("--port", default=9090, show_default=True)
@click.option(
    "--url",
    default=None,
    help="The backend's URL as Label Studio reaches it (default: http://HOST:PORT).",
)
@click.option(
    "--retrain-after",
    default=50,
    show_default=True,
    help="New annotations that start a training run (0: never retrain).",
)
@click.option(
    "--quiet-period",
    default=30.0,
    show_default=True,
    help="Seconds without new annotations before that run starts.",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Serve without authentication (only with a loopback --host and --url).",
)
@user_errors
def serve(
    cloud: str,
    task: str | None,
    host: str,
    port: int,
    url: str | None,
    retrain_after: int,
    quiet_period: float,
    no_auth: bool,
) -> None:
    """Serve the production model to Label Studio as its ML backend, and retrain on new labels.

    Connects the backend to the project with basic auth (LOOP_BACKEND_USER and
    LOOP_BACKEND_PASSWORD, or credentials of its own kept in the state folder), so every task
    an annotator opens gets a pre-annotation; past --retrain-after new annotations it starts
    `run.py CLOUD --train --rerun` in the background.
    """
    use_task(task)
    backend_server(
        cloud,
        load_settings(),
        host,
        port,
        url or f"http://{host}:{port}",
        retrain_after,
        quiet_period,
        authenticate=not no_auth,
    ).run()


def backend_server(
    cloud: str,
    settings: Settings,
    host: str,
    port: int,
    url: str,
    retrain_after: int,
    quiet_period: float,
    authenticate: bool = True,
) -> Any:
    """The ML backend's server, ready to `run()`; once up, it connects itself to the project.
    Without `authenticate` it answers anyone, so it may only listen on loopback."""
    import threading
    import time

    import uvicorn

    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.data.sync import ensure_project
    from annotation_loop.errors import LabelStudioUnreachable
    from annotation_loop.ml_backend import ModelHolder, create_app
    from annotation_loop.ml_backend.annotation_watch import POLL_INTERVAL_S, AnnotationWatch
    from annotation_loop.ml_backend.auth import (
        WEBHOOK_SECRET_HEADER,
        backend_credentials,
        check_exposure,
    )
    from annotation_loop.ml_backend.limits import RequestLimits
    from annotation_loop.ml_backend.retraining import (
        RetrainingTrigger,
        run_record_path,
        subprocess_launcher,
    )
    from annotation_loop.ml_backend.zenml_source import ZenMLModelSource
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.leases import training_lease
    from annotation_loop.zenml_integration.model_registry import label_studio_from_stack

    check_exposure(host, url, authenticate)
    credentials = backend_credentials(settings) if authenticate else None
    task_type = get_task_type(settings.task)
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    store = ObjectStore(settings.data_source(cloud))
    project_id = ensure_project(client, store, settings.project_name, settings.labels, task_type)
    holder = ModelHolder(
        ZenMLModelSource(settings.model_name, settings.task, tuple(settings.labels))
    )
    trigger = (
        RetrainingTrigger(
            subprocess_launcher(
                [sys.executable, str(PROJECT_ROOT / "run.py"), cloud, "--train", "--rerun"],
                settings.logs_dir / "retraining",
                environment=settings.environment(),
            ),
            threshold=retrain_after,
            quiet_period_s=quiet_period,
            timeout_s=settings.retrain_timeout,
            running_elsewhere=training_lease(settings.model_name, "run.py serve").holder,
            record_path=run_record_path(settings.state_dir, settings.model_name),
        )
        if retrain_after > 0
        else None
    )
    watch = (
        AnnotationWatch(lambda: client.annotation_count(project_id), trigger.record)
        if trigger
        else None
    )
    limits = RequestLimits()
    app = create_app(
        holder, store, project_id, credentials, trigger=trigger, watch=watch, limits=limits
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, limit_concurrency=limits.max_connections)
    )

    def connect_when_up() -> None:
        # Label Studio calls /health and /setup while connecting: the server must be up.
        while not server.started:
            if server.should_exit:
                return
            time.sleep(0.1)
        try:
            served = holder.served
            version = served.model_version if served else None
            client.connect_ml_backend(
                project_id,
                url,
                title=version or "annotation-loop",
                basic_auth=(
                    (credentials.user, credentials.password.get_secret_value())
                    if credentials
                    else None
                ),
            )
            client.use_predictions_of(project_id, version)
        except LoopError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            server.should_exit = True
            return
        click.echo(
            f"ML backend {url} connected to {client.project_url(project_id)} with "
            f"{'basic auth' if credentials else 'no authentication'}, serving "
            f"{served.model_version if served else 'nothing yet (no production model)'}"
            + (
                f"; retraining after {retrain_after} new annotations and {quiet_period:g} s quiet"
                if trigger
                else ""
            )
        )
        if credentials is None:
            return
        # After the backend: Label Studio may have made a webhook there itself, without the
        # secret header, and the connection proved the API key may change the project.
        webhook_url = f"{url.rstrip('/')}/webhook"
        try:
            client.ensure_webhook(
                project_id,
                webhook_url,
                {WEBHOOK_SECRET_HEADER: credentials.webhook_secret.get_secret_value()},
            )
        except LabelStudioUnreachable as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
        except LoopError:
            # Counting does not need it: it only makes the count come sooner.
            click.echo(
                f"Label Studio refused a webhook to {webhook_url} (its SSRF protection refuses "
                "loopback and private addresses): new annotations are counted every "
                f"{POLL_INTERVAL_S:g} s"
            )

    threading.Thread(target=connect_when_up, name="connect-backend", daemon=True).start()
    return server


@cli.command()
@task_option
@user_errors
def curve(task: str | None) -> None:
    """Print the model's learning curve (labels vs validation score) and whether labelling
    more still pays off, as the last training run judged it."""
    from zenml.client import Client

    from annotation_loop.learning.learning_curve import curve_table
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import learning_curve

    use_task(task)
    settings = load_settings()
    metric = get_task_type(settings.task).promotion_metric
    points = learning_curve(settings.model_name, metric)
    if not points:
        raise LoopError(
            f"No training runs of {settings.model_name!r} yet: run `python run.py <cloud> --train`"
        )
    click.echo(curve_table(points, metric))
    latest = Client().get_model_version(settings.model_name, points[-1].version)
    recorded = latest.run_metadata.get("learning_curve")
    if isinstance(recorded, dict):
        click.echo(recorded["advice"])


def label_batch_with_oracle(
    client: Any, settings: Settings, cloud: str, inference: InferenceOutcome, truth: dict[str, Any]
) -> Any:
    """The oracle annotates every task of the inferred batch, starting from its predictions."""
    from annotation_loop.dev.oracle import OracleTask, label_with_truth
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
            )
            for task in inference.tasks
        ],
        truth,
    )


def run_demo(cloud: str, settings: Settings, batches: int, batch_size: int) -> None:
    """train -> infer batch_1 -> oracle -> train --rerun -> infer --rerun -> oracle -> ..."""
    from zenml.client import Client

    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.dev import demo_report as demo
    from annotation_loop.dev.demo_guard import (
        local_login,
        require_demo_label_studio,
        require_own_label_studio_process,
        require_project_zenml_store,
    )
    from annotation_loop.dev.services import start_services
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import label_studio_from_stack

    # Before anything is started, written or deleted.
    require_demo_label_studio(settings, "demo")
    require_project_zenml_store(settings)
    task_type = get_task_type(settings.task)
    start_services(settings, STAND_INS[cloud])
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    click.echo(
        f"Seeding {batches} batches of {batch_size} items for {task_type.description} in "
        f"{store.source.dataset_uri}"
    )
    truth = task_type.seed_demo(store, batches, batch_size, seed=0)

    # A demo starts from scratch: no project, no model versions from an earlier demo.
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    require_own_label_studio_process(settings)
    label_config = task_type.label_config(settings.labels)
    client.delete_project(client.get_or_create_project(settings.project_name, label_config))
    with contextlib.suppress(KeyError):
        Client().delete_model(settings.model_name)

    rows: list[demo.RoundRow] = []
    outcome = run_training(cloud, settings, rerun=False)
    click.echo(outcome.message)
    rows.append(demo.RoundRow("train", 0, None, None, None, None))
    for round_number in range(1, batches):
        inference = run_inference(cloud, settings, rerun=round_number > 1)
        click.echo(inference.message)
        report = label_batch_with_oracle(client, settings, cloud, inference, truth)
        outcome = run_training(cloud, settings, rerun=True)
        click.echo(outcome.message)
        rows.append(
            demo.RoundRow(
                f"{inference.batch} labelled, train --rerun",
                outcome.labelled_items,
                outcome.model_version,
                outcome.validation_score,
                outcome.promoted,
                report.acceptance_rate,
            )
        )
    waiting = run_inference(cloud, settings, rerun=True)
    click.echo(waiting.message)
    click.echo("\n" + demo.round_table(rows, f"val. {task_type.promotion_metric}"))
    if waiting.batch:
        click.echo(
            f"\n{waiting.batch} is waiting for people, pre-annotated by {waiting.model_version}."
        )
    click.echo(
        "Open the project: "
        f"{client.project_url(client.get_or_create_project(settings.project_name, label_config))} "
        f"(login {local_login(settings)})"
    )


if __name__ == "__main__":
    cli()
