"""The process of the project's ZenML server (`ZenmlServer` in annotation_loop.dev.services):
`python -m annotation_loop.dev.zenml_server --port N`, in the environment that class gives it.

It first makes sure the default user's password is the project's, then runs ZenML's own
server application, as ZenML's local daemon does.
"""

from __future__ import annotations

import argparse
import os

from annotation_loop.dev.services import ZenmlServer
from annotation_loop.errors import ServiceError

PASSWORD_VARIABLE = "ZENML_DEFAULT_USER_PASSWORD"  # ZenML reads it when it creates that user


def require_password(password: str) -> None:
    """Gives ZenML's default user `password`. A store a client opened directly before made
    that user with an empty password, with which anyone on the machine could log in."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.models import UserAuthModel, UserUpdate
    from zenml.zen_stores.sql_zen_store import SqlZenStore

    store = GlobalConfiguration().zen_store  # migrated and initialized, as the server needs
    if not isinstance(store, SqlZenStore):
        raise ServiceError(f"the ZenML server must serve a SQL store, not {store.url}")
    user = store.get_auth_user(ZenmlServer.username)
    if not UserAuthModel.verify_password(password, user):
        store.update_user(user.id, UserUpdate(password=password))


def main() -> None:
    import uvicorn
    from zenml.constants import ZEN_SERVER_ENTRYPOINT

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    require_password(os.environ[PASSWORD_VARIABLE])
    uvicorn.run(
        ZEN_SERVER_ENTRYPOINT, host="127.0.0.1", port=port, log_level="info", server_header=False
    )


if __name__ == "__main__":
    main()
