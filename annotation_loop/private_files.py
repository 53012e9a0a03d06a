"""Owner-only folders and files for what holds secrets.

The state folder holds Label Studio's database (users, tokens, storage credentials), ZenML's
store (its secrets), the services' logs and pid files: it is 0700 and what the project writes
in it 0600, so another account on the machine reads none of it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from annotation_loop.errors import ConfigurationError

OWNER_ONLY_UMASK = 0o077  # for processes that write into the state folder
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter: created 0700 (missing parents too), or an
    existing one narrowed to 0700. A folder of another user is refused: it cannot be made
    private, and whoever owns it reads what is put there."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConfigurationError(
            f"{path} belongs to another user, so secrets kept there would not be private: "
            "set LOOP_STATE_DIR to a folder of your own"
        )
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
        path.chmod(PRIVATE_DIR)
    return path


def open_private(path: Path) -> BinaryIO:
    """`path` emptied and opened for writing, readable by its owner only (an existing file
    is narrowed to 0600 before anything is written)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    os.fchmod(descriptor, PRIVATE_FILE)
    return os.fdopen(descriptor, "wb")


def write_private(path: Path, text: str) -> None:
    with open_private(path) as file:
        file.write(text.encode())
