"""The model the ML backend serves: the production version, reloaded in place when a newer
version is promoted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from annotation_loop.task_types.base import TaskType

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    model_version: str  # how its pre-annotations name it, e.g. "digits_classifier:3"
    task_type: TaskType
    labels: tuple[str, ...]  # every label the model can predict
    model: Any  # what `task_type.predict()` takes


class ModelSource(Protocol):
    """Where production models come from (the ZenML Model Control Plane)."""

    def production_version(self) -> str | None:
        """The current production version's name, None if there is none; cheap."""

    def load(self, version: str) -> ServedModel:
        """The model of a version; expensive."""


class ModelHolder:
    """The served model, cached: asks the source for the production version at most every
    `reload_interval_s` and loads a newly promoted one. Thread-safe."""

    def __init__(
        self,
        source: ModelSource,
        reload_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._reload_interval_s = reload_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._served: ServedModel | None = None
        self._version: str | None = None  # the source's name of the served version
        self._checked_at: float | None = None

    @property
    def served(self) -> ServedModel | None:
        """The model served now, without asking the source (for answers that must be fast)."""
        return self._served

    def current(self) -> ServedModel | None:
        """The model to predict with, after a check for a new production version if one is due;
        None while there is no production model."""
        # While a new version loads, other requests go on with the old one; with no model yet
        # they wait for it rather than answer "no model".
        if self._check_due() and self._lock.acquire(blocking=self._served is None):
            try:
                if self._check_due():  # another request may have checked meanwhile
                    self._check()
            finally:
                self._lock.release()
        return self._served

    def _check_due(self) -> bool:
        return (
            self._checked_at is None or self._clock() - self._checked_at >= self._reload_interval_s
        )

    def _check(self) -> None:
        self._checked_at = self._clock()
        served = self._served.model_version if self._served else "nothing"
        # The source is ZenML and its stores: whatever fails there, the backend keeps serving.
        try:
            version = self._source.production_version()
        except Exception as error:
            logger.warning(
                "Could not look up the production version (%s): serving %s", error, served
            )
            return
        if version is None or version == self._version:
            return
        try:
            model = self._source.load(version)
        except Exception as error:
            logger.error(
                "Could not load production version %s (%s): serving %s", version, error, served
            )
            return
        self._served, self._version = model, version
        logger.info("Serving %s (was %s)", model.model_version, served)
