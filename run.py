"""Drives the continuous-annotation loop: a thin command line over `annotation_loop.app`.

python run.py up | down | status                 local Label Studio + S3 stand-in
python run.py local --train [--rerun]            fetch new labels, fine-tune, maybe promote
python run.py aws --inference [--rerun]          sync the next batch, push pre-annotations
python run.py demo [--cloud aws] [--task ner]    the whole loop with an oracle annotator
python run.py serve [--cloud aws]                the production model as Label Studio's ML backend
python run.py curve                              the learning curve, and whether labelling pays off
python run.py export --task detection --out DIR  the boxes as COCO JSON and YOLO, with the images

`--task` (or LOOP_TASK) picks the task type: image (default), text, ner, detection or
transcription.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from annotation_loop.errors import LoopError
from annotation_loop.settings import CLOUDS
from annotation_loop.task_types import TASK_TYPES

F = TypeVar("F", bound=Callable[..., Any])


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


def say(message: str) -> None:
    click.echo(message, err=message.startswith("Error: "))


task_option = click.option(
    "--task",
    type=click.Choice(list(TASK_TYPES)),
    default=None,
    help="The task type (default: LOOP_TASK, else image).",
)


def use_task(task: str | None) -> None:
    if task is not None:
        os.environ["LOOP_TASK"] = task


@click.group()
def cli() -> None:
    """The continuous-annotation loop on ZenML and Label Studio."""


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
    """Start the local ZenML dashboard, Label Studio and cloud stand-ins; reuse them if up."""
    from annotation_loop.app import load_settings
    from annotation_loop.clouds import local_services
    from annotation_loop.dev.demo_guard import (
        local_login,
        require_demo_label_studio,
        zenml_login,
    )
    from annotation_loop.dev.services import ZENML_SERVER_NAME, start_services

    settings = load_settings()
    require_demo_label_studio(settings, "up")
    # ZenML's server first: it refuses a ZenML that uses another store before anything starts.
    for status in start_services(settings, (ZENML_SERVER_NAME, *local_services(clouds))):
        click.echo(f"{status.name}: {status.url} (pid {status.pid}, log {status.log_file})")
    click.echo(f"Label Studio login: {local_login(settings)}")
    click.echo(f"ZenML dashboard login: {zenml_login(settings)}")


@cli.command()
@user_errors
def down() -> None:
    """Stop the local services."""
    from annotation_loop.app import load_settings
    from annotation_loop.dev.services import stop_services

    stop_services(load_settings())
    click.echo("Local services stopped.")


@cli.command()
@user_errors
def status() -> None:
    """Show whether the local services are up."""
    from annotation_loop.app import load_settings
    from annotation_loop.dev.services import services_status

    for s in services_status(load_settings()):
        state = "healthy" if s.healthy else ("running, not healthy" if s.running else "stopped")
        click.echo(f"{s.name:13} {state:22} {s.url}  log: {s.log_file}")


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
        from annotation_loop.app import infer, load_settings, train

        settings = load_settings()
        if mode == "train":
            say(train(cloud, settings, rerun, notify=say).message)
        else:
            say(infer(cloud, settings, rerun, batch=batch, notify=say).message)

    command.__doc__ = f"Run the loop on the {cloud!r} stack."
    return click.command(name=cloud)(command)


for _cloud in CLOUDS:
    cli.add_command(cloud_command(_cloud))


@cli.command()
@click.option("--cloud", type=click.Choice(CLOUDS), default="local", show_default=True)
@task_option
@click.option("--batches", default=3, show_default=True, help="Batches of demo items to seed.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Demo items per batch [default: the task type's, e.g. 200 images, 24 audio files].",
)
@user_errors
def demo(cloud: str, task: str | None, batches: int, batch_size: int | None) -> None:
    """The whole loop, unattended, on local stand-ins, with an oracle annotator."""
    from annotation_loop.app import load_settings
    from annotation_loop.app.demo import run_demo
    from annotation_loop.clouds import get_cloud
    from annotation_loop.task_types import get_task_type

    stand_in = get_cloud(cloud).stand_in
    if stand_in is not None:  # the demo points the cloud at its local stand-in
        os.environ[stand_in.variable] = "true"
    use_task(task)
    settings = load_settings()
    batch_size = batch_size or get_task_type(settings.task).defaults.demo_batch_size
    run_demo(cloud, settings, batches, batch_size, say)


@cli.command()
@click.option(
    "--cloud",
    type=click.Choice(CLOUDS),
    default="local",
    show_default=True,
    envvar="LOOP_CLOUD",
    show_envvar=True,
)
@task_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the backend listens.")
@click.option("--port", default=9090, show_default=True)
@click.option(
    "--url",
    default=None,
    envvar="LOOP_BACKEND_URL",
    show_envvar=True,
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
    from annotation_loop.app import load_settings
    from annotation_loop.app.serve import backend_server

    backend_server(
        cloud,
        load_settings(),
        host,
        port,
        url or f"http://{host}:{port}",
        retrain_after,
        quiet_period,
        authenticate=not no_auth,
        say=say,
    ).run()


@cli.command()
@click.option("--cloud", type=click.Choice(CLOUDS), default="local", show_default=True)
@task_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write (images/, labels/, data.yaml, annotations/).",
)
@click.option("--images/--no-images", default=True, show_default=True, help="Copy the images too.")
@user_errors
def export(cloud: str, task: str | None, out: Path, images: bool) -> None:
    """Export the latest training snapshot of a detection project as COCO JSON and YOLO."""
    use_task(task)
    from annotation_loop.app import load_settings
    from annotation_loop.app.export import export_snapshot

    report = export_snapshot(cloud, load_settings(), out, images, say)
    say(f"Exported {report.images} images with {report.boxes} boxes:")
    for path in report.written:
        say(f"  {path}")
    if report.missing:
        say(f"Left out {len(report.missing)} images gone from the bucket, e.g. {report.missing[0]}")


@cli.command()
@task_option
@user_errors
def curve(task: str | None) -> None:
    """Print the model's learning curve (labels vs validation score) and whether labelling
    more still pays off, as the last training run judged it."""
    use_task(task)
    from annotation_loop.app import load_settings
    from annotation_loop.app.curve import learning_curve_report

    click.echo(learning_curve_report(load_settings()))


@cli.command()
@task_option
@user_errors
def quality(task: str | None) -> None:
    """Print the annotators' agreement on the overlap set, their reliability, the tasks
    waiting in the Disagreement tab and the anchoring check, per training round."""
    use_task(task)
    from annotation_loop.app import load_settings
    from annotation_loop.app.quality import label_quality_report

    click.echo(label_quality_report(load_settings()))


if __name__ == "__main__":
    cli()
