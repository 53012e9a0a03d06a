"""Which objects a task may make the loop read, and reading a local file without surprises.

A task's `data` names the object the ML backend, training and inference read (`uri`), and
whoever can create tasks writes it. So a read is refused unless the object is in the
dataset's own store, under its prefix, with no `..` in its key, and at most the configured
number of bytes; a local file must also be a regular file inside the dataset folder once
symlinks are resolved. A refusal concerns one object: the caller skips it and says why.
"""

from __future__ import annotations

import os
import stat

from annotation_loop.data.uris import fsspec_path
from annotation_loop.errors import StorageError

# Longest URI quoted in a message: a task can name anything, and a message stays one line.
SHOWN_URI = 200


class UnreadableObject(StorageError):
    """One object cannot be read; the others can, so callers skip it and report why."""


class ObjectGone(UnreadableObject):
    """The object was deleted after it was listed."""


class RefusedObject(UnreadableObject):
    """The loop will not read this object: outside the dataset, not a regular file, too big."""

    def __init__(self, uri: str, reason: str) -> None:
        shown = uri if len(uri) <= SHOWN_URI else f"{uri[:SHOWN_URI]}..."
        super().__init__(f"Refused {shown!r}: {reason}")
        self.reason = reason


def scheme_of(uri: str) -> str:
    return uri.split("://", 1)[0] if "://" in uri else "file"


def confined_path(uri: str, protocol: str, dataset_uri: str) -> str:
    """The fsspec path of `uri`, if it names an object under `dataset_uri` in the store of
    `protocol`; raises `RefusedObject` otherwise.

    The prefix is compared as written and no `..` may follow it, so no spelling of a path
    (normalised by the store, or by a server) leads out of the dataset.
    """
    outside = f"outside the dataset {dataset_uri}/ (tasks may only name objects under it)"
    if scheme_of(uri) != protocol:
        raise RefusedObject(uri, f"not in the dataset's store; {outside}")
    path = fsspec_path(uri)
    dataset_path = fsspec_path(dataset_uri).rstrip("/")
    if not path.startswith(f"{dataset_path}/"):
        raise RefusedObject(uri, outside)
    if ".." in path[len(dataset_path) + 1 :].split("/"):
        raise RefusedObject(uri, f"a '..' in the key; {outside}")
    return path


def too_big(uri: str, max_bytes: int, size: int | None = None) -> RefusedObject:
    known = "" if size is None else f"{size} bytes, "
    return RefusedObject(
        uri,
        f"{known}over the limit of {max_bytes} bytes (LOOP_MAX_ITEM_BYTES): shrink or split "
        "it, or raise the limit",
    )


def read_local_file(path: str, dataset_dir: str, max_bytes: int) -> bytes:
    """The bytes of a regular file inside `dataset_dir` (symlinks resolved), at most
    `max_bytes` of them; raises `RefusedObject` for anything else."""
    real = os.path.realpath(path)
    if not real.startswith(os.path.join(os.path.realpath(dataset_dir), "")):
        raise RefusedObject(path, f"a link out of the dataset folder {dataset_dir}")
    # O_NONBLOCK: opening a FIFO would otherwise wait for a writer; O_NOFOLLOW: a symlink
    # swapped in after realpath() is not followed.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(real, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:  # e.g. a symlink swapped in, or no permission
        raise UnreadableObject(f"Cannot open {path!r}: {exc.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise RefusedObject(path, "not a regular file (a FIFO, device or folder)")
        if status.st_size > max_bytes:
            raise too_big(path, max_bytes, status.st_size)
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise too_big(path, max_bytes)
    return data
