"""`run.py serve`: the production model as Label Studio's ML backend, and retraining on
new annotations."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from annotation_loop.app.environment import prepare_stack
from annotation_loop.errors import LoopError
from annotation_loop.settings import PROJECT_ROOT, Settings


def backend_server(
    cloud: str,
    settings: Settings,
    host: str,
    port: int,
    url: str,
    retrain_after: int,
    quiet_period: float,
    authenticate: bool = True,
    say: Callable[[str], None] = print,
) -> Any:
    """The ML backend's server, ready to `run()`; once up, it connects itself to the project.
    Without `authenticate` it answers anyone, so it may only listen on loopback."""
    import threading
    import time

    import uvicorn

    from annotation_loop.data.sync import ensure_project
    from annotation_loop.errors import LabelStudioHTTPError, LabelStudioUnreachable
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
    from annotation_loop.ml_backend.uploads import StoreWithUploads
    from annotation_loop.ml_backend.zenml_source import ZenMLModelSource
    from annotation_loop.task_types import get_task_type
    from annotation_loop.task_types.capabilities import interactive_prediction_of
    from annotation_loop.zenml_integration.leases import training_lease
    from annotation_loop.zenml_integration.model_registry import label_studio_from_stack

    check_exposure(host, url, authenticate)
    credentials = backend_credentials(settings) if authenticate else None
    task_type = get_task_type(settings.task)
    prepare_stack(cloud, settings)
    client = label_studio_from_stack()
    client.check()
    store = StoreWithUploads(settings.data_source(cloud), client)
    project_id = ensure_project(
        client, store, settings.project_name, settings.labels, task_type, settings
    )
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
        holder,
        store,
        project_id,
        credentials,
        trigger=trigger,
        watch=watch,
        limits=limits,
        quality=settings.label_quality,
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
                interactive=interactive_prediction_of(task_type) is not None,
            )
            client.use_predictions_of(project_id, version)
        except LoopError as exc:
            say(f"Error: {exc}")
            server.should_exit = True
            return
        say(
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
            say(f"Error: {exc}")
        except LabelStudioHTTPError:
            # Counting does not need it: it only makes the count come sooner.
            say(
                f"Label Studio refused a webhook to {webhook_url} (its SSRF protection refuses "
                "loopback and private addresses): new annotations are counted every "
                f"{POLL_INTERVAL_S:g} s"
            )

    threading.Thread(target=connect_when_up, name="connect-backend", daemon=True).start()
    return server
