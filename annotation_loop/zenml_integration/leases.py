"""Leases in the ZenML store: one training run per model, one inference run per Label Studio
project, one promotion at a time, whichever machine runs them.

A lease is a public ZenML secret named after what it guards. Every machine that runs the
pipelines shares the ZenML store (a remote orchestrator needs a ZenML server anyway), so it
is seen from all of them. Taking a lease creates the secret, which fails when it exists; its
values name the holder and when the lease expires. The holder renews it every third of its
time to live while it works, and deletes it when done, failing or interrupted alike. A lease
past its expiry (or held by a process of this machine that is gone) may be broken: deleted by
its id, so a breaker never deletes the lease of whoever took it since, and taken again.
Expiries are compared across machines, so their clocks must agree to well within the time to
live (NTP does).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import psutil
from sqlalchemy.exc import IntegrityError
from zenml.client import Client
from zenml.exceptions import EntityExistsError
from zenml.models import SecretUpdate

from annotation_loop.errors import ConfigurationError, LoopError
from annotation_loop.processes import live_process

if TYPE_CHECKING:
    from annotation_loop.settings import Settings

logger = logging.getLogger(__name__)

PREFIX = "annotation-loop-lease"
TTL_S = 180.0  # a crashed holder blocks others this long at most (seconds)
POLL_S = 1.0  # how often a waiting run tries again
NOTIFY_EVERY_S = 60.0  # how often a waiting run says it is still waiting
# Creating a lease that exists: the store's own check, its unique index on the same user's
# secrets (a local SQL store), or that index behind a ZenML server (a 500).
_TAKEN_ERRORS = (EntityExistsError, IntegrityError, RuntimeError)


class LeaseHeld(LoopError):
    """Another run holds the lease, and did not let it go in time."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def _pid_space() -> str:
    """Where a process id names the same process: this host, its boot, its pid namespace (two
    containers may share a host name and a kernel, not a pid namespace)."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        parts.append(os.readlink("/proc/self/ns/pid"))
    return " ".join(parts)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease, as its secret's values record it."""

    purpose: str  # e.g. "run.py aws --train"
    host: str
    pid: int
    pid_space: str
    process_started: float
    expires_at: datetime

    @classmethod
    def this_process(cls, purpose: str, expires_at: datetime) -> Holder:
        return cls(
            purpose=purpose,
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_space=_pid_space(),
            process_started=psutil.Process().create_time(),
            expires_at=expires_at,
        )

    @classmethod
    def from_values(cls, values: dict[str, str]) -> Holder | None:
        try:
            return cls(
                purpose=values["purpose"],
                host=values["host"],
                pid=int(values["pid"]),
                pid_space=values["pid_space"],
                process_started=float(values["process_started"]),
                expires_at=datetime.fromisoformat(values["expires_at"]),
            )
        except (KeyError, ValueError):
            return None

    def values(self) -> dict[str, str]:
        return {
            "purpose": self.purpose,
            "host": self.host,
            "pid": str(self.pid),
            "pid_space": self.pid_space,
            "process_started": repr(self.process_started),
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def unknown(cls, expires_at: datetime) -> Holder:
        """A holder whose values are not written yet (or unreadable)."""
        return cls("a run taking the lease", "an unknown host", 0, "", 0.0, expires_at)

    def describe(self) -> str:
        return f"{self.purpose} (pid {self.pid} on {self.host})"

    def is_stale(self, now: datetime) -> bool:
        """Past its expiry, or its process, on this machine, is gone."""
        if now >= self.expires_at:
            return True
        if self.pid_space != _pid_space():
            return False
        return live_process(self.pid, self.process_started) is None


class Lease:
    """One named lease: `held()` is the way to take it for a block of work.

    `subject` says what it guards ("training of 'digits_classifier'"), `purpose` what this
    process does under it ("run.py aws --train").
    """

    def __init__(
        self,
        kind: str,
        key: str,
        subject: str,
        purpose: str,
        ttl_s: float = TTL_S,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.name = f"{PREFIX}-{kind}-{digest}"
        self.subject = subject
        self.purpose = purpose
        self.ttl_s = ttl_s
        self._clock = clock
        self._secret_id: UUID | None = None

    def holder(self) -> Holder | None:
        """Who holds the lease now; None if nobody does (or the holder's lease is stale)."""
        seen = self._read()
        if seen is None or seen[1].is_stale(self._clock()):
            return None
        return seen[1]

    def try_acquire(self) -> Holder | None:
        """Takes the lease if nobody holds it (breaking a stale one); returns None if taken,
        else the holder."""
        seen = self._read()
        if seen is not None:
            secret_id, holder = seen
            if not holder.is_stale(self._clock()):
                return holder
            logger.warning(
                "Breaking the stale lease on the %s of %s", self.subject, holder.describe()
            )
            self._delete(secret_id)
        mine = Holder.this_process(self.purpose, self._expiry())
        try:
            created = Client().create_secret(self.name, mine.values(), private=False)
        except NotImplementedError:
            raise ConfigurationError(
                "The ZenML store has no secrets store, where runs keep their leases: connect "
                "to a ZenML server (or store) with one"
            ) from None
        except _TAKEN_ERRORS:
            seen = self._read()
            if seen is None:  # not taken after all: a real failure
                raise
            return seen[1]
        # Two users' public secrets of one name are kept apart by a check that two creators
        # can both pass, not by an index: a creator who sees a rival lets go.
        if Client().list_secrets(name=f"equals:{self.name}", private=False).total > 1:
            self._delete(created.id)
            seen = self._read()
            return seen[1] if seen else Holder.unknown(mine.expires_at)
        self._secret_id = created.id
        return None

    def acquire(self, wait_s: float, notify: Callable[[str], None] | None = None) -> None:
        """Takes the lease, waiting up to `wait_s` seconds for its holder (saying so through
        `notify`, else the log, now and then); raises LeaseHeld if it is still held then."""
        notify = notify or logger.warning
        deadline = time.monotonic() + wait_s
        notified_at: float | None = None
        while (holder := self.try_acquire()) is not None:
            now = time.monotonic()
            if now >= deadline:
                waited = f" (after {wait_s:g} s of waiting)" if wait_s > 0 else ""
                raise LeaseHeld(
                    f"{holder.describe()} is running the {self.subject}{waited}: run again "
                    "once it is done, or set LOOP_LEASE_WAIT to wait longer"
                )
            if notified_at is None or now - notified_at >= NOTIFY_EVERY_S:
                notify(
                    f"Waiting for {holder.describe()}, which is running the {self.subject} "
                    f"(up to {deadline - now:.0f} s more)"
                )
                notified_at = now
            time.sleep(min(POLL_S, deadline - now))

    def renew(self) -> bool:
        """Pushes the expiry one time to live away; False if the lease was lost (broken by
        another run after it expired)."""
        if self._secret_id is None:
            return False
        holder = Holder.this_process(self.purpose, self._expiry())
        try:
            Client().zen_store.update_secret(self._secret_id, SecretUpdate(values=holder.values()))
        except KeyError:
            self._secret_id = None
            return False
        return True

    def release(self) -> None:
        """Lets the lease go (a lease broken since is someone else's: left alone)."""
        if self._secret_id is not None:
            self._delete(self._secret_id)
            self._secret_id = None

    @contextlib.contextmanager
    def held(self, wait_s: float, notify: Callable[[str], None] | None = None) -> Iterator[Lease]:
        """The lease for the block, renewed in the background, released however it ends."""
        self.acquire(wait_s, notify)
        stop = threading.Event()
        heartbeat = threading.Thread(
            target=self._renew_until, args=(stop,), name=f"lease-{self.name}", daemon=True
        )
        heartbeat.start()
        try:
            yield self
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(self.ttl_s / 3):
            try:
                if not self.renew():
                    logger.error(
                        "Lost the lease on the %s: it expired and another run took it, so "
                        "two may now run at once",
                        self.subject,
                    )
                    return
            except Exception:  # a store that is briefly unreachable: the next beat retries
                logger.warning("Could not renew the lease on the %s", self.subject, exc_info=True)

    def _expiry(self) -> datetime:
        return self._clock() + timedelta(seconds=self.ttl_s)

    def _read(self) -> tuple[UUID, Holder] | None:
        """The lease's secret and holder, if there is one (the oldest, if rivals race)."""
        listed = Client().list_secrets(
            name=f"equals:{self.name}", private=False, sort_by="asc:created"
        )
        for secret in listed.items:
            try:
                full = Client().zen_store.get_secret(secret.id)
            except KeyError:  # deleted since it was listed
                continue
            holder = Holder.from_values(full.secret_values)
            if holder is None:  # its values are not written yet
                updated = full.updated.replace(tzinfo=UTC)
                holder = Holder.unknown(updated + timedelta(seconds=self.ttl_s))
            return full.id, holder
        return None

    def _delete(self, secret_id: UUID) -> None:
        with contextlib.suppress(KeyError):  # gone already
            Client().zen_store.delete_secret(secret_id)


def training_lease(model_name: str, purpose: str) -> Lease:
    return Lease("training", model_name, f"training of {model_name!r}", purpose)


def inference_lease(label_studio_url: str, project_name: str, purpose: str) -> Lease:
    return Lease(
        "inference",
        f"{label_studio_url.rstrip('/')} {project_name}",
        f"inference on the Label Studio project {project_name!r}",
        purpose,
    )


def promotion_lease(model_name: str, purpose: str) -> Lease:
    return Lease("promotion", model_name, f"promotion of {model_name!r}", purpose)


def command_lease(command: str, cloud: str, settings: Settings) -> Lease:
    """The lease `run.py <cloud> --train` (per model) or `--inference` (per Label Studio
    project) holds."""
    purpose = f"run.py {cloud} --{command}"
    if command == "train":
        return training_lease(settings.model_name, purpose)
    return inference_lease(settings.label_studio_url, settings.project_name, purpose)
