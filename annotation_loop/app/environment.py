"""The process a command runs in: private files, ZenML's state inside the project, and the
project's ZenML stack for a cloud."""

from __future__ import annotations

import os

from annotation_loop.private_files import OWNER_ONLY_UMASK, private_dir
from annotation_loop.settings import PROJECT_ROOT, Settings


def load_settings() -> Settings:
    """Settings, plus the process environment ZenML and the storage clients read."""
    settings = Settings.from_environment()
    # What this process writes (ZenML's store with its secrets, logs, artifacts) is its
    # owner's only, and so is the state folder it lives in.
    os.umask(OWNER_ONLY_UMASK)
    private_dir(settings.state_dir)
    # Before zenml is imported: keep ZenML's state inside the project, make no calls home.
    os.environ.setdefault("ZENML_CONFIG_PATH", str(settings.zenml_config_path))
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    os.environ.update(settings.client_environment())
    return settings


def prepare_stack(cloud: str, settings: Settings) -> None:
    """The project's ZenML repository and the cloud's stack, registered and active."""
    from zenml.client import Client

    from annotation_loop.data.storage import ObjectStore
    from annotation_loop.dev.demo_guard import require_running_zenml_server
    from annotation_loop.zenml_integration.stacks import register_stack

    # One line, not ZenML's 30 s of retries and a traceback, if the local server is gone.
    require_running_zenml_server(settings)
    if not (PROJECT_ROOT / ".zen").exists():
        Client.initialize(root=PROJECT_ROOT)
    register_stack(cloud, settings)
    if cloud != "local":
        # The artifact store lives in the data bucket, and ZenML writes a run's inputs there
        # before its first step: a missing bucket or a refused key says so here, on one line.
        ObjectStore(settings.data_source(cloud)).list_batches()
