"""Retraining on new annotations: a debounced trigger that starts one training run at a time.

Label Studio reports each annotation (through the ML backend's webhook); once enough have
arrived and annotators have paused for a while, a training run starts in its own process
(its own process group, so it outlives a restart of the backend and can be stopped whole).
A run of the same model started elsewhere (its training lease is held) is waited for; the
run in progress is recorded in the state folder, so a restarted backend watches it instead
of starting another; a run past its timeout is stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import psutil

from annotation_loop.errors import ConfigurationError
from annotation_loop.private_files import private_dir, write_private
from annotation_loop.processes import alive, live_process

if TYPE_CHECKING:
    from annotation_loop.zenml_integration.leases import Holder

logger = logging.getLogger(__name__)

TICK_S = 1.0  # how often the background thread looks at the trigger
ELSEWHERE_RECHECK_S = 30.0  # how often a run elsewhere is looked at again while it goes on
STOP_GRACE_S = 30.0  # between asking an overdue run to stop (SIGINT) and killing it


@dataclass(frozen=True)
class RunRecord:
    """What finds a run's process again after a restart: its pid and when it started (a pid
    alone may be another process's by then)."""

    pid: int
    started: float  # the process's create time (seconds since the epoch)
    log_path: str

    def save(self, path: Path) -> None:
        private_dir(path.parent)
        write_private(path, json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        try:
            fields = json.loads(path.read_text())
            return cls(int(fields["pid"]), float(fields["started"]), str(fields["log_path"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None


class TrainingRun(Protocol):
    @property
    def log_path(self) -> Path | None:
        """Where its output goes, if anywhere."""

    @property
    def record(self) -> RunRecord | None:
        """How a restarted backend finds it again (None: it cannot)."""

    def poll(self) -> int | None:
        """Like `subprocess.Popen.poll`: None while running, else the exit code."""

    def stop(self, force: bool) -> None:
        """Asks the run to stop (force: kills it), with every process it started."""


@dataclass(frozen=True)
class TriggerStatus:
    pending: int  # annotations no successful run has covered yet
    running: bool
    runs_started: int
    last_exit_code: int | None  # of the last finished run; None if none finished
    last_failure: str | None  # why the last failed run failed
    # a run of the model this backend did not start, as last seen when one of its own was due
    running_elsewhere: str | None = None


class RetrainingTrigger:
    """Starts a training run when `threshold` annotations are pending, none arrived for
    `quiet_period_s` (a burst of annotations starts one run, after it) and no run is in
    progress, here or elsewhere (`running_elsewhere` says who holds the model's training
    lease). Annotations arriving during a run count towards the next one; a failed run's
    stay pending, and the next annotation (after a quiet period) retries. A run going on
    past `timeout_s` is stopped, and counts as failed.

    With `record_path`, the run in progress is recorded there, and a trigger made after a
    restart adopts it while it lives: it watches that run instead of starting another.

    `record` is thread-safe; `tick` does the work, every second on the thread `start` starts.
    """

    def __init__(
        self,
        start_run: Callable[[], TrainingRun],
        threshold: int = 50,
        quiet_period_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float | None = None,
        running_elsewhere: Callable[[], Holder | None] | None = None,
        record_path: Path | None = None,
    ) -> None:
        if threshold < 1 or quiet_period_s < 0 or (timeout_s is not None and timeout_s <= 0):
            raise ConfigurationError(
                f"Invalid retraining trigger (threshold {threshold}, quiet period "
                f"{quiet_period_s} s, timeout {timeout_s} s): the threshold must be >= 1, the "
                "quiet period >= 0 and the timeout > 0"
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
        self._timeout_s = timeout_s
        self._running_elsewhere = running_elsewhere
        self._elsewhere: Holder | None = None
        self._elsewhere_checked_at = 0.0
        self._record_path = record_path
        self._started_at = 0.0
        self._adopted = False  # the run is a previous backend's: its exit code is not ours
        self._stop_asked_at: float | None = None  # when an overdue run was asked to stop
        self._killed = False
        if record_path is not None:
            self._adopt(record_path)

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
                running_elsewhere=self._elsewhere.describe() if self._elsewhere else None,
            )

    def tick(self) -> None:
        """Notices a finished (or overdue) run, and starts one if it is due."""
        with self._lock:
            if self._run is not None:
                exit_code = self._run.poll()
                if exit_code is None:
                    self._stop_if_overdue(self._run)
                    return
                self._finish(self._run, exit_code)
            if (self._requested or self._due()) and not self._runs_elsewhere():
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
                "Stopped watching a retraining run in progress (log: %s): it goes on, and a "
                "backend started again watches it",
                self._run.log_path,
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

    def _runs_elsewhere(self) -> bool:
        """Whether another process (another backend, someone's `--train`) trains the model:
        asked again every ELSEWHERE_RECHECK_S while it does."""
        if self._running_elsewhere is None:
            return False
        now = self._clock()
        if self._elsewhere is not None and now - self._elsewhere_checked_at < ELSEWHERE_RECHECK_S:
            return True
        holder = self._running_elsewhere()
        if holder is not None and self._elsewhere is None:
            logger.info(
                "A training run of this model is in progress elsewhere (%s): retraining "
                "waits for it",
                holder.describe(),
            )
        self._elsewhere, self._elsewhere_checked_at = holder, now
        return holder is not None

    def _start(self) -> None:
        self._requested = False
        try:
            run = self._start_run()
        except OSError as error:
            self._fail(f"The retraining run could not start ({error})")
            return
        self._watch(run, covered=self._pending, started_at=self._clock(), adopted=False)
        self._runs_started += 1
        if self._record_path is not None and run.record is not None:
            run.record.save(self._record_path)
        logger.info(
            "Retraining started for %d new annotations (log: %s)", self._pending, run.log_path
        )

    def _watch(self, run: TrainingRun, covered: int, started_at: float, adopted: bool) -> None:
        self._run = run
        self._covered = covered
        self._started_at = started_at
        self._adopted = adopted
        self._stop_asked_at, self._killed = None, False

    def _adopt(self, record_path: Path) -> None:
        record = RunRecord.load(record_path)
        run = AdoptedRun.find(record) if record else None
        if record is None or run is None:
            record_path.unlink(missing_ok=True)  # that run is over
            return
        age_s = max(0.0, time.time() - record.started)
        self._watch(run, covered=0, started_at=self._clock() - age_s, adopted=True)
        logger.info(
            "Watching the retraining run a previous backend started (pid %d, log: %s)",
            record.pid,
            record.log_path,
        )

    def _stop_if_overdue(self, run: TrainingRun) -> None:
        """SIGINT past the timeout (the run lets its leases go), SIGKILL if that is ignored."""
        if self._timeout_s is None or self._killed:
            return
        now = self._clock()
        if self._stop_asked_at is None:
            if now - self._started_at >= self._timeout_s:
                logger.error(
                    "The retraining run is still going after %g s: stopping it (log: %s)",
                    self._timeout_s,
                    run.log_path,
                )
                run.stop(force=False)
                self._stop_asked_at = now
        elif now - self._stop_asked_at >= STOP_GRACE_S:
            logger.error("The retraining run did not stop within %g s: killing it", STOP_GRACE_S)
            run.stop(force=True)
            self._killed = True

    def _finish(self, run: TrainingRun, exit_code: int) -> None:
        self._run = None
        if self._record_path is not None:
            self._record_path.unlink(missing_ok=True)
        log = f": see {run.log_path}" if run.log_path else ""
        if not self._adopted:  # else not this process's child: how it ended is in its log
            self._last_exit_code = exit_code
        if self._stop_asked_at is not None:
            self._fail(f"The retraining run timed out after {self._timeout_s:g} s{log}")
            return
        if self._adopted:
            logger.info("The retraining run a previous backend started has ended%s", log)
            return
        if exit_code != 0:
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


def _signal_group(pid: int, force: bool) -> None:
    """SIGINT (Python runs its `finally` blocks, leases are let go) or SIGKILL to the process
    group `pid` leads."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL if force else signal.SIGINT)


@dataclass(frozen=True)
class SubprocessRun:
    """A run this process started, leading its own process group."""

    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def record(self) -> RunRecord | None:
        try:
            started = psutil.Process(self.process.pid).create_time()
        except psutil.Error:  # over already
            return None
        return RunRecord(self.process.pid, started, str(self.log_path))

    def poll(self) -> int | None:
        return self.process.poll()

    def stop(self, force: bool) -> None:
        if self.process.poll() is None:
            _signal_group(self.process.pid, force)


@dataclass(frozen=True)
class AdoptedRun:
    """A run a previous backend started: not this process's child, so its exit code cannot
    be read (0 once it is over)."""

    process: psutil.Process
    record: RunRecord

    @classmethod
    def find(cls, record: RunRecord) -> AdoptedRun | None:
        """The recorded run if its process still runs (the same process, not the pid reused)."""
        process = live_process(record.pid, record.started)
        return None if process is None else cls(process, record)

    @property
    def log_path(self) -> Path:
        return Path(self.record.log_path)

    def poll(self) -> int | None:
        return None if alive(self.process) else 0

    def stop(self, force: bool) -> None:
        if self.poll() is None:
            _signal_group(self.process.pid, force)


def run_record_path(state_dir: Path, model_name: str) -> Path:
    """Where `serve` records the retraining run of `model_name` it started."""
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:16]
    return state_dir / "retraining" / f"run-{digest}.json"


def subprocess_launcher(
    command: Sequence[str], log_dir: Path, environment: Mapping[str, str] | None = None
) -> Callable[[], SubprocessRun]:
    """Starts `command` (e.g. `[sys.executable, "run.py", "local", "--train"]`) per call, with
    `environment` on top of this process's, its stdout and stderr going to a new timestamped
    log file in `log_dir`, in a session of its own (a Ctrl-C of the backend does not reach it;
    stopping it stops its process group)."""
    arguments = list(command)
    env = {**os.environ, **(environment or {})}

    def start() -> SubprocessRun:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / datetime.now().strftime("retrain-%Y%m%d-%H%M%S-%f.log")
        with log_path.open("xb") as log:  # the child keeps its own handle on the file
            process = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return SubprocessRun(process, log_path)

    return start
