import logging
import os
import stat
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.ml_backend.retraining import (
    ELSEWHERE_RECHECK_S,
    STOP_GRACE_S,
    RetrainingTrigger,
    RunRecord,
    SubprocessRun,
    TrainingRun,
    TriggerStatus,
    run_record_path,
    subprocess_launcher,
)
from annotation_loop.zenml_integration.leases import Holder, training_lease

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
    record: RunRecord | None = None
    stops: list[bool] = field(default_factory=list)  # force, per stop asked

    def poll(self) -> int | None:
        return self.exit_code

    def stop(self, force: bool) -> None:
        self.stops.append(force)


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
    with caplog.at_level(logging.ERROR, logger="annotation_loop.ml_backend.retraining"):
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


# -- runs started elsewhere ----------------------------------------------------------------


def holder(purpose: str) -> Holder:
    return Holder(purpose, "elsewhere", 4242, "another machine", 0.0, datetime.now(UTC))


def test_no_run_starts_while_the_model_trains_elsewhere(
    launcher: FakeLauncher, clock: FakeClock
) -> None:
    elsewhere: list[Holder | None] = [holder("run.py aws --train")]
    probes: list[float] = []

    def running_elsewhere() -> Holder | None:
        probes.append(clock.now)
        return elsewhere[0]

    trigger = RetrainingTrigger(
        launcher, threshold=1, quiet_period_s=0, clock=clock, running_elsewhere=running_elsewhere
    )
    burst(trigger, clock, 5)
    wait_quietly(trigger, clock, ELSEWHERE_RECHECK_S - 1)
    assert launcher.runs == []
    assert trigger.status.running_elsewhere == "run.py aws --train (pid 4242 on elsewhere)"
    assert len(probes) == 1  # asked again only every ELSEWHERE_RECHECK_S
    elsewhere[0] = None  # that run is over
    wait_quietly(trigger, clock, 1)
    assert len(launcher.runs) == 1
    assert trigger.status.pending == 5  # the run here still covers them


def test_a_training_lease_held_elsewhere_stops_the_trigger(launcher: FakeLauncher) -> None:
    model = f"model_{uuid.uuid4().hex[:8]}"
    someone = training_lease(model, "run.py local --train")
    assert someone.try_acquire() is None
    clock = FakeClock()
    trigger = RetrainingTrigger(
        launcher,
        threshold=1,
        quiet_period_s=0,
        clock=clock,
        running_elsewhere=training_lease(model, "run.py serve").holder,
    )
    try:
        trigger.record()
        trigger.tick()
        assert launcher.runs == []
        status = trigger.status.running_elsewhere
        assert status is not None and status.startswith("run.py local --train (pid")
    finally:
        someone.release()
    clock.now += ELSEWHERE_RECHECK_S
    trigger.tick()
    assert len(launcher.runs) == 1


# -- a restarted backend -------------------------------------------------------------------


def sleeper(tmp_path: Path, script: str = "import time; time.sleep(600)") -> Callable:
    return subprocess_launcher([sys.executable, "-c", script], tmp_path / "logs")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_restarted_backend_watches_its_old_run_instead_of_starting_another(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    record_path = run_record_path(tmp_path / "state", "digits")
    start = sleeper(tmp_path)
    old = RetrainingTrigger(
        start, threshold=1, quiet_period_s=0, clock=clock, record_path=record_path
    )
    old.record()
    old.tick()
    assert old.status.running
    record = RunRecord.load(record_path)
    assert record is not None
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(record_path.parent.stat().st_mode) == 0o700
    try:
        # The backend restarts (its thread stops; the run, in its own session, goes on).
        launched: list[TrainingRun] = []

        def launch() -> TrainingRun:
            launched.append(start())
            return launched[-1]

        with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend.retraining"):
            new = RetrainingTrigger(
                launch, threshold=1, quiet_period_s=0, clock=clock, record_path=record_path
            )
        assert f"pid {record.pid}" in caplog.text
        assert new.status.running
        new.record(3)
        new.request_run()
        new.tick()
        assert launched == []  # no second run beside the old one
    finally:
        os.killpg(record.pid, 9)
    wait_until(lambda: gone(record.pid), "the old run did not end")
    new.tick()  # notices the old run ended, and starts the one asked for
    assert len(launched) == 1
    launched[0].stop(force=True)
    assert new.status.pending == 3


def test_an_adopted_run_counts_its_time_from_its_own_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    record_path = run_record_path(tmp_path / "state", "digits")
    old = RetrainingTrigger(
        sleeper(tmp_path, CLEANS_UP),
        threshold=1,
        quiet_period_s=0,
        clock=clock,
        record_path=record_path,
    )
    old.record()
    old.tick()
    [log] = (tmp_path / "logs").iterdir()
    wait_until(lambda: "ready" in log.read_text(), "the run did not start")
    new = RetrainingTrigger(
        FakeLauncher(), threshold=1, clock=FakeClock(), timeout_s=0.001, record_path=record_path
    )
    assert new.status.running
    new.tick()  # older than the timeout already (Python took longer to start): stopped
    wait_until(lambda: new.tick() or not new.status.running, "the adopted run did not stop")
    assert "let its leases go" in log.read_text()
    status = new.status
    assert status.last_failure is not None and "timed out" in status.last_failure
    assert not record_path.exists()


def test_a_record_of_a_finished_or_reused_pid_is_not_adopted(tmp_path: Path) -> None:
    record_path = run_record_path(tmp_path, "digits")
    me = psutil.Process()
    for record in (
        RunRecord(me.pid, me.create_time() - 5.0, "old.log"),  # this pid is another process now
        RunRecord(2**22 + 1, 0.0, "old.log"),  # no such process
    ):
        record.save(record_path)
        trigger = RetrainingTrigger(FakeLauncher(), threshold=1, record_path=record_path)
        assert not trigger.status.running
        assert not record_path.exists()
    record_path.write_text("not json")
    assert not RetrainingTrigger(FakeLauncher(), record_path=record_path).status.running


# -- a hung run ----------------------------------------------------------------------------


def test_a_hung_run_is_stopped_after_the_timeout_and_its_annotations_stay_pending(
    trigger: RetrainingTrigger, launcher: FakeLauncher, clock: FakeClock
) -> None:
    timed = RetrainingTrigger(
        launcher, threshold=THRESHOLD, quiet_period_s=QUIET_S, clock=clock, timeout_s=100
    )
    burst(timed, clock, THRESHOLD)
    wait_quietly(timed, clock, QUIET_S)
    [run] = launcher.runs
    wait_quietly(timed, clock, 99)
    assert run.stops == []
    wait_quietly(timed, clock, 1)
    assert run.stops == [False]  # asked first: SIGINT, so it lets its leases go
    wait_quietly(timed, clock, STOP_GRACE_S)
    assert run.stops == [False, True]  # then killed
    wait_quietly(timed, clock, 100)
    assert run.stops == [False, True]
    run.exit_code = -9
    timed.tick()
    status = timed.status
    assert (status.running, status.pending, status.last_exit_code) == (False, THRESHOLD, -9)
    assert status.last_failure is not None and "timed out after 100 s" in status.last_failure


HUNG = """
import signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # and so does its own child
child = subprocess.Popen(["sleep", "600"])
print(child.pid, flush=True)
child.wait()
"""


def test_a_hung_run_and_its_children_are_killed(tmp_path: Path, clock: FakeClock) -> None:
    trigger = RetrainingTrigger(
        sleeper(tmp_path, HUNG), threshold=1, quiet_period_s=0, clock=clock, timeout_s=5
    )
    trigger.record()
    trigger.tick()
    [log] = (tmp_path / "logs").iterdir()
    wait_until(lambda: log.read_text().strip().isdigit(), "the hung run did not start its child")
    grandchild = int(log.read_text())
    clock.now += 5
    trigger.tick()  # SIGINT: ignored
    assert trigger.status.running and not gone(grandchild)
    clock.now += STOP_GRACE_S
    trigger.tick()  # SIGKILL to the whole process group
    wait_until(lambda: trigger.tick() or not trigger.status.running, "the run was not killed")
    wait_until(lambda: gone(grandchild), "the run's own child survived")
    status = trigger.status
    assert (status.pending, status.last_exit_code) == (1, -9)
    assert status.last_failure is not None and "timed out after 5 s" in status.last_failure


CLEANS_UP = """
import time
try:
    print("ready", flush=True)
    time.sleep(600)
finally:
    print("let its leases go", flush=True)
"""


def test_a_run_that_honours_ctrl_c_stops_at_the_timeout(tmp_path: Path, clock: FakeClock) -> None:
    trigger = RetrainingTrigger(
        sleeper(tmp_path, CLEANS_UP), threshold=1, quiet_period_s=0, clock=clock, timeout_s=5
    )
    trigger.record()
    trigger.tick()
    [log] = (tmp_path / "logs").iterdir()
    wait_until(lambda: "ready" in log.read_text(), "the run did not start")
    clock.now += 5
    trigger.tick()
    wait_until(lambda: trigger.tick() or not trigger.status.running, "the run did not stop")
    status = trigger.status
    assert status.last_exit_code == -2  # an uncaught KeyboardInterrupt ...
    assert "let its leases go" in log.read_text()  # ... after its finally blocks ran
    assert status.last_failure is not None and "timed out" in status.last_failure


def test_an_invalid_timeout_is_refused(launcher: FakeLauncher) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        RetrainingTrigger(launcher, timeout_s=0)


def test_launched_runs_lead_their_own_session(tmp_path: Path) -> None:
    run = sleeper(tmp_path)()
    try:
        assert os.getpgid(run.process.pid) == run.process.pid != os.getpgid(0)
    finally:
        run.stop(force=True)
        run.process.wait()
