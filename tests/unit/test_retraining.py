import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.retraining import (
    RetrainingTrigger,
    SubprocessRun,
    TriggerStatus,
    subprocess_launcher,
)

THRESHOLD = 50
QUIET_S = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeRun:
    """A training run that ends when the test says so."""

    exit_code: int | None = None
    log_path: Path | None = None

    def poll(self) -> int | None:
        return self.exit_code


class FakeLauncher:
    def __init__(self) -> None:
        self.runs: list[FakeRun] = []

    def __call__(self) -> FakeRun:
        self.runs.append(FakeRun(log_path=Path(f"/logs/run-{len(self.runs)}.log")))
        return self.runs[-1]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def launcher() -> FakeLauncher:
    return FakeLauncher()


@pytest.fixture
def trigger(launcher: FakeLauncher, clock: FakeClock) -> RetrainingTrigger:
    return RetrainingTrigger(launcher, threshold=THRESHOLD, quiet_period_s=QUIET_S, clock=clock)


def burst(trigger: RetrainingTrigger, clock: FakeClock, annotations: int) -> None:
    """Annotations arriving 10 ms apart, the trigger ticking in between as its thread does."""
    for _ in range(annotations):
        trigger.record()
        clock.now += 0.01
        trigger.tick()


def wait_quietly(trigger: RetrainingTrigger, clock: FakeClock, seconds: float) -> None:
    """`seconds` without annotations, ticking every second."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(clock.now + 1.0, end)
        trigger.tick()


def test_a_burst_starts_one_run_after_the_quiet_period(
    trigger: RetrainingTrigger, launcher: FakeLauncher, clock: FakeClock
) -> None:
    burst(trigger, clock, 1000)
    wait_quietly(trigger, clock, QUIET_S - 1)
    assert launcher.runs == []  # still inside the quiet period
    wait_quietly(trigger, clock, 1)
    assert len(launcher.runs) == 1
    wait_quietly(trigger, clock, 3 * QUIET_S)
    assert len(launcher.runs) == 1
    status = trigger.status
    assert (status.pending, status.running, status.runs_started) == (1000, True, 1)


def test_no_run_below_the_threshold(
    trigger: RetrainingTrigger, launcher: FakeLauncher, clock: FakeClock
) -> None:
    burst(trigger, clock, THRESHOLD - 1)
    wait_quietly(trigger, clock, 10 * QUIET_S)
    assert launcher.runs == []
    burst(trigger, clock, 1)
    wait_quietly(trigger, clock, QUIET_S - 1)
    assert launcher.runs == []
    wait_quietly(trigger, clock, 1)
    assert len(launcher.runs) == 1


def test_annotations_during_a_run_start_one_more_after_it(
    trigger: RetrainingTrigger, launcher: FakeLauncher, clock: FakeClock
) -> None:
    burst(trigger, clock, 60)
    wait_quietly(trigger, clock, QUIET_S)
    burst(trigger, clock, 70)  # while the first run trains
    wait_quietly(trigger, clock, 2 * QUIET_S)
    assert len(launcher.runs) == 1  # one at a time
    assert trigger.status.pending == 130

    launcher.runs[0].exit_code = 0
    trigger.tick()
    assert len(launcher.runs) == 2  # the second burst is over and quiet already
    assert (trigger.status.pending, trigger.status.last_exit_code) == (70, 0)
    launcher.runs[1].exit_code = 0
    wait_quietly(trigger, clock, 3 * QUIET_S)
    assert len(launcher.runs) == 2
    assert trigger.status == TriggerStatus(0, False, 2, 0, None)


def test_a_failed_run_is_reported_and_retried_after_the_next_annotation(
    trigger: RetrainingTrigger,
    launcher: FakeLauncher,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    burst(trigger, clock, THRESHOLD)
    wait_quietly(trigger, clock, QUIET_S)
    launcher.runs[0].exit_code = 1
    with caplog.at_level(logging.ERROR, logger="annotation_loop.retraining"):
        trigger.tick()
    status = trigger.status
    assert (status.pending, status.running, status.last_exit_code) == (THRESHOLD, False, 1)
    assert status.last_failure is not None
    assert "exit code 1" in status.last_failure and "/logs/run-0.log" in status.last_failure
    assert status.last_failure in caplog.text

    wait_quietly(trigger, clock, 10 * QUIET_S)
    assert len(launcher.runs) == 1  # no retry loop without new annotations
    burst(trigger, clock, 1)
    wait_quietly(trigger, clock, QUIET_S)
    assert len(launcher.runs) == 2
    launcher.runs[1].exit_code = 0
    trigger.tick()
    assert trigger.status.pending == 0


def test_start_training_runs_now_whatever_the_count(
    trigger: RetrainingTrigger, launcher: FakeLauncher, clock: FakeClock
) -> None:
    burst(trigger, clock, 3)
    trigger.request_run()
    trigger.tick()
    assert len(launcher.runs) == 1
    trigger.request_run()  # during the run: waits for it
    trigger.tick()
    assert len(launcher.runs) == 1
    launcher.runs[0].exit_code = 0
    trigger.tick()
    assert len(launcher.runs) == 2
    assert trigger.status.pending == 0


def test_a_run_that_cannot_start_is_a_failure(clock: FakeClock, tmp_path: Path) -> None:
    start = subprocess_launcher([str(tmp_path / "no-such-program")], tmp_path / "logs")
    trigger = RetrainingTrigger(start, threshold=1, quiet_period_s=0, clock=clock)
    trigger.record()
    trigger.tick()
    status = trigger.status
    assert (status.running, status.runs_started, status.pending) == (False, 0, 1)
    assert status.last_failure is not None and "could not start" in status.last_failure


def test_invalid_settings_are_refused(launcher: FakeLauncher) -> None:
    with pytest.raises(ConfigurationError, match="threshold"):
        RetrainingTrigger(launcher, threshold=0)


def finished(run: SubprocessRun) -> int:
    deadline = time.monotonic() + 30
    while (exit_code := run.poll()) is None:
        assert time.monotonic() < deadline, "the subprocess did not end"
        time.sleep(0.02)
    return exit_code


def test_the_subprocess_launcher_logs_each_run_to_its_own_file(tmp_path: Path) -> None:
    code = "import sys; print('training on', sys.argv[1]); print('oops', file=sys.stderr); "
    start = subprocess_launcher([sys.executable, "-c", code + "sys.exit(3)", "batch_1"], tmp_path)
    first, second = start(), start()
    assert (finished(first), finished(second)) == (3, 3)
    assert first.log_path != second.log_path
    assert first.log_path.parent == tmp_path
    assert first.log_path.read_text().splitlines() == ["training on batch_1", "oops"]

    succeeding = subprocess_launcher([sys.executable, "-c", "pass"], tmp_path / "new" / "dir")()
    assert finished(succeeding) == 0
    assert succeeding.log_path.read_text() == ""


def test_the_background_thread_starts_and_reports_a_real_run(tmp_path: Path) -> None:
    start = subprocess_launcher([sys.executable, "-c", "raise SystemExit(2)"], tmp_path)
    trigger = RetrainingTrigger(start, threshold=2, quiet_period_s=0)
    trigger.start()
    try:
        trigger.record(2)
        deadline = time.monotonic() + 30
        while trigger.status.last_exit_code is None:
            assert time.monotonic() < deadline, "the trigger did not start and finish a run"
            time.sleep(0.05)
    finally:
        trigger.stop()
    status = trigger.status
    assert (status.last_exit_code, status.runs_started, status.pending) == (2, 1, 2)
    [log] = tmp_path.iterdir()
    assert status.last_failure is not None and str(log) in status.last_failure
