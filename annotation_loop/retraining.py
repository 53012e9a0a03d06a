"""Retraining on new annotations: a debounced trigger that starts one training run at a time.

Label Studio reports each annotation (through the ML backend's webhook); once enough have
arrived and annotators have paused for a while, a training run starts in its own process.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from annotation_loop.errors import ConfigurationError

logger = logging.getLogger(__name__)

TICK_S = 1.0  # how often the background thread looks at the trigger


class TrainingRun(Protocol):
    @property
    def log_path(self) -> Path | None:
        """Where its output goes, if anywhere."""

    def poll(self) -> int | None:
        """Like `subprocess.Popen.poll`: None while running, else the exit code."""


@dataclass(frozen=True)
class TriggerStatus:
    pending: int  # annotations no successful run has covered yet
    running: bool
    runs_started: int
    last_exit_code: int | None  # of the last finished run; None if none finished
    last_failure: str | None  # why the last failed run failed


class RetrainingTrigger:
    """Starts a training run when `threshold` annotations are pending, none arrived for
    `quiet_period_s` (a burst of annotations starts one run, after it) and no run is in
    progress. Annotations arriving during a run count towards the next one; a failed run's
    stay pending, and the next annotation (after a quiet period) retries.

    `record` is thread-safe; `tick` does the work, every second on the thread `start` starts.
    """

    def __init__(
        self,
        start_run: Callable[[], TrainingRun],
        threshold: int = 50,
        quiet_period_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1 or quiet_period_s < 0:
            raise ConfigurationError(
                f"Invalid retraining trigger (threshold {threshold}, quiet period "
                f"{quiet_period_s} s): the threshold must be >= 1 and the quiet period >= 0"
            )
        self._start_run = start_run
        self._threshold = threshold
        self._quiet_period_s = quiet_period_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending = 0
        self._last_annotation_at = 0.0
        self._run: TrainingRun | None = None
        self._covered = 0  # the pending annotations the current run started with
        self._requested = False  # a run asked for now, whatever the count
        self._await_annotation = False  # after a failure: retry only on new annotations
        self._runs_started = 0
        self._last_exit_code: int | None = None
        self._last_failure: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, annotations: int = 1) -> None:
        """Counts new or changed annotations."""
        if annotations < 1:
            return
        with self._lock:
            self._pending += annotations
            self._last_annotation_at = self._clock()
            self._await_annotation = False

    def request_run(self) -> None:
        """Asks for a run as soon as none is in progress, however few annotations are pending
        (Label Studio's "Start Training")."""
        with self._lock:
            self._requested = True
        logger.info("Retraining requested")

    @property
    def status(self) -> TriggerStatus:
        with self._lock:
            return TriggerStatus(
                pending=self._pending,
                running=self._run is not None,
                runs_started=self._runs_started,
                last_exit_code=self._last_exit_code,
                last_failure=self._last_failure,
            )

    def tick(self) -> None:
        """Notices a finished run, and starts one if it is due."""
        with self._lock:
            if self._run is not None:
                exit_code = self._run.poll()
                if exit_code is None:
                    return
                self._finish(self._run, exit_code)
            if self._requested or self._due():
                self._start()

    def start(self) -> None:
        """Ticks every second on a background thread until `stop`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._tick_until_stopped, name="retraining", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join()
        self._thread = None
        if self._run is not None:
            logger.warning(
                "Stopped watching a retraining run in progress (log: %s)", self._run.log_path
            )

    def _tick_until_stopped(self) -> None:
        while not self._stopping.wait(TICK_S):
            # Whatever a run or its launcher raises, retraining must not stop for good.
            try:
                self.tick()
            except Exception:
                logger.exception("Retraining trigger failed; trying again in %s s", TICK_S)

    def _due(self) -> bool:
        return (
            self._pending >= self._threshold
            and self._clock() - self._last_annotation_at >= self._quiet_period_s
            and not self._await_annotation
        )

    def _start(self) -> None:
        self._requested = False
        try:
            run = self._start_run()
        except OSError as error:
            self._fail(f"The retraining run could not start ({error})")
            return
        self._run, self._covered = run, self._pending
        self._runs_started += 1
        logger.info(
            "Retraining started for %d new annotations (log: %s)", self._pending, run.log_path
        )

    def _finish(self, run: TrainingRun, exit_code: int) -> None:
        self._run = None
        self._last_exit_code = exit_code
        if exit_code != 0:
            log = f": see {run.log_path}" if run.log_path else ""
            self._fail(f"The retraining run failed with exit code {exit_code}{log}")
            return
        self._pending -= self._covered
        logger.info("Retraining finished; %d annotations arrived since it started", self._pending)

    def _fail(self, failure: str) -> None:
        self._last_failure = failure
        self._await_annotation = True
        logger.error(
            "%s. Its %d annotations stay pending: the next annotation retries after a quiet period",
            failure,
            self._pending,
        )


@dataclass(frozen=True)
class SubprocessRun:
    process: subprocess.Popen[bytes]
    log_path: Path

    def poll(self) -> int | None:
        return self.process.poll()


def subprocess_launcher(
    command: Sequence[str], log_dir: Path, environment: Mapping[str, str] | None = None
) -> Callable[[], SubprocessRun]:
    """Starts `command` (e.g. `[sys.executable, "run.py", "local", "--train"]`) per call, with
    `environment` on top of this process's, its stdout and stderr going to a new timestamped
    log file in `log_dir`."""
    arguments = list(command)
    env = {**os.environ, **(environment or {})}

    def start() -> SubprocessRun:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / datetime.now().strftime("retrain-%Y%m%d-%H%M%S-%f.log")
        with log_path.open("xb") as log:  # the child keeps its own handle on the file
            process = subprocess.Popen(
                arguments, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return SubprocessRun(process, log_path)

    return start
