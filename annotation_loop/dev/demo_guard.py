"""What `run.py up` and `run.py demo` check before they start or delete anything.

Both run only the project's own Label Studio: on loopback, with the demo token. The demo also
deletes and recreates its project and ZenML model, so it goes on only when the server
answering is the process this state folder started and ZenML's store is this state folder's
own (its SQLite database, or the ZenML server this state folder started): a `.env` pointing
at a real Label Studio or ZenML server never reaches a deletion.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from annotation_loop.dev.services import LabelStudioServer, ZenmlServer, store_location
from annotation_loop.errors import ConfigurationError, ServiceError
from annotation_loop.settings import (
    DEMO_LABEL_STUDIO_PASSWORD,
    DEMO_LABEL_STUDIO_TOKEN,
    PROJECT_ROOT,
    Settings,
)

# `run.py up` starts Label Studio on 127.0.0.1 only.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
# Where `make install` points the virtualenv's ZenML (annotation_loop_env.pth), whatever
# LOOP_STATE_DIR says: the project's own store too.
VENV_ZENML_CONFIG = PROJECT_ROOT / ".loop" / "zenml"


def require_demo_label_studio(settings: Settings, command: str) -> None:
    """Refuses unless LOOP_LABEL_STUDIO_URL and _API_KEY are the local demo server's."""
    url = urlsplit(settings.label_studio_url)
    if url.scheme != "http" or url.hostname not in LOOPBACK_HOSTS:
        raise ConfigurationError(
            f"`run.py {command}` runs only the project's own Label Studio on 127.0.0.1, and "
            f"LOOP_LABEL_STUDIO_URL is {settings.label_studio_url}: unset it (and "
            "LOOP_LABEL_STUDIO_API_KEY) for the demo; use `run.py <cloud> ...` with your server"
        )
    if settings.label_studio_api_key.get_secret_value() != DEMO_LABEL_STUDIO_TOKEN:
        raise ConfigurationError(
            f"`run.py {command}` runs only the project's own Label Studio with the demo token, "
            "and LOOP_LABEL_STUDIO_API_KEY is another: unset it for the demo; use "
            "`run.py <cloud> ...` with your own server"
        )


def require_own_label_studio_process(settings: Settings) -> None:
    """Refuses unless what answers at LOOP_LABEL_STUDIO_URL is the Label Studio whose pid file
    is in this state folder (alive, and listening on that port itself)."""
    server = LabelStudioServer(settings)
    if not server.status().healthy:
        raise ServiceError(
            f"Label Studio at {server.url} is not the one this project started from "
            f"{settings.state_dir}, so the demo deletes nothing there: stop whatever answers "
            "on that port and run the demo again"
        )


def require_project_zenml_store(settings: Settings) -> None:
    """Refuses unless ZenML's store is the project's own: a SQLite database in this state
    folder (or where the virtualenv keeps it), or the URL of the ZenML server this state
    folder starts (`require_running_zenml_server` checks, once started, that it is ours)."""
    from sqlalchemy.engine import make_url
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StoreType

    if ZenmlServer(settings).is_client_store():
        return
    store = GlobalConfiguration().store_configuration
    own = settings.zenml_config_path.resolve()
    if store.type == StoreType.SQL:
        url = make_url(store.url)
        database = Path(url.database or "").resolve()
        if url.get_backend_name() == "sqlite" and any(
            database.is_relative_to(folder) for folder in (own, VENV_ZENML_CONFIG.resolve())
        ):
            return
    raise ConfigurationError(
        f"`run.py demo` deletes and recreates its ZenML model, so it runs only on the "
        f"project's own ZenML store in {own}, and ZenML uses {store_location(store)}: unset "
        "ZENML_CONFIG_PATH and ZENML_STORE_URL (or run `zenml logout`) for the demo"
    )


def require_running_zenml_server(settings: Settings) -> None:
    """When ZenML's store is the project's ZenML server, refuses unless what answers there is
    the server whose pid file is in this state folder (alive, and listening on that port
    itself). Without it, ZenML would retry a stopped server for 30 s, then fail."""
    server = ZenmlServer(settings)
    if server.is_client_store() and not server.status().healthy:
        raise ServiceError(
            f"ZenML uses the project's ZenML server at {server.url}, which is not running (or "
            "is not the one this project started): `run.py up` starts it again, `run.py down` "
            "goes back to ZenML's local store"
        )


def local_login(settings: Settings) -> str:
    """The local server's login as the demo prints it: a password of the user's own is
    named, never shown."""
    password = settings.label_studio_password.get_secret_value()
    shown = password if password == DEMO_LABEL_STUDIO_PASSWORD else "LOOP_LABEL_STUDIO_PASSWORD"
    return f"{settings.label_studio_username} / {shown}"


def zenml_login(settings: Settings) -> str:
    """The ZenML dashboard's login as the demo prints it: where the generated password is,
    never the password."""
    server = ZenmlServer(settings)
    return f"{server.username} / the password in {server.password_file}"
