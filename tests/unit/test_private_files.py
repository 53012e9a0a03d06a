"""Owner-only folders and files for what holds secrets."""

import os
import stat
from pathlib import Path

import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.private_files import open_private, private_dir, write_private


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_folder_and_its_missing_parents_are_owner_only(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "state" / "run")
    assert mode(folder) == mode(folder.parent) == 0o700


def test_an_open_folder_is_narrowed(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    private_dir(folder)
    assert mode(folder) == 0o700


def test_another_users_folder_is_refused(tmp_path: Path) -> None:
    if os.getuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir()
        os.chown(theirs, 65534, 65534)  # nobody
    else:
        theirs = Path("/")
    with pytest.raises(ConfigurationError, match="LOOP_STATE_DIR") as error:
        private_dir(theirs)
    assert "\n" not in str(error.value)


def test_files_are_owner_only_even_when_they_were_not(tmp_path: Path) -> None:
    new = tmp_path / "new.pid"
    write_private(new, "{}")
    old = tmp_path / "old.log"
    old.write_text("earlier run")
    old.chmod(0o644)
    with open_private(old) as log:
        log.write(b"this run")
    assert mode(new) == mode(old) == 0o600
    assert old.read_text() == "this run"
