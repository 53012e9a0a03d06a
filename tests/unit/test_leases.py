"""Leases against the real (local) ZenML store: taking, conflicting, expiring, breaking by id,
renewing, letting go; and `run_training` / `run_inference` under them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session
from zenml.client import Client
from zenml.zen_stores.schemas import SecretSchema

from annotation_loop import app
from annotation_loop.app import inference, training
from annotation_loop.errors import LoopError
from annotation_loop.settings import PROJECT_ROOT, Settings
from annotation_loop.zenml_integration import leases
from annotation_loop.zenml_integration.leases import (
    Lease,
    LeaseHeld,
    inference_lease,
    training_lease,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leases, "POLL_S", 0.01)


@pytest.fixture
def key() -> str:
    return f"model_{uuid.uuid4().hex[:8]}"


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def lease_secrets(lease: Lease) -> list[uuid.UUID]:
    return [s.id for s in Client().list_secrets(name=f"equals:{lease.name}").items]


def test_a_lease_is_held_until_released(key: str) -> None:
    first, second = training_lease(key, "first run"), training_lease(key, "second run")
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert holder is not None
    assert (holder.purpose, holder.pid) == ("first run", os.getpid())
    assert second.holder() == holder
    first.release()
    assert second.holder() is None
    assert second.try_acquire() is None
    second.release()
    assert lease_secrets(second) == []


def test_leases_of_other_models_and_kinds_are_independent(key: str) -> None:
    taken = [
        training_lease(key, "training"),
        training_lease(f"{key}_other", "another model's training"),
        inference_lease("http://ls:8080", key, "inference on a project named like the model"),
    ]
    try:
        assert [lease.try_acquire() for lease in taken] == [None, None, None]
    finally:
        for lease in taken:
            lease.release()


def test_an_expired_lease_is_broken_by_id_and_the_breaker_keeps_its_own(key: str) -> None:
    crashed = Lease("training", key, "training", "a run that stopped renewing", clock=at(T0))
    assert crashed.try_acquire() is None
    [crashed_id] = lease_secrets(crashed)

    before_expiry = Lease(
        "training", key, "training", "early", clock=at(T0 + timedelta(seconds=179))
    )
    assert before_expiry.try_acquire() is not None  # still held

    late = T0 + timedelta(seconds=leases.TTL_S + 1)
    breaker = Lease("training", key, "training", "breaker", clock=at(late))
    assert breaker.holder() is None  # expired: nobody holds it
    assert breaker.try_acquire() is None
    [breaker_id] = lease_secrets(breaker)
    assert breaker_id != crashed_id

    # The old holder wakes up: it has lost the lease, and letting go (or a second breaker
    # that read the old lease) deletes by the old id, never the breaker's lease.
    assert crashed.renew() is False
    crashed.release()
    Lease("training", key, "training", "slow breaker", clock=at(late))._delete(crashed_id)
    assert lease_secrets(breaker) == [breaker_id]
    assert training_lease(key, "x").holder().purpose == "breaker"  # type: ignore[union-attr]
    breaker.release()


def test_a_renewed_lease_does_not_expire(key: str) -> None:
    now = {"t": T0}
    holder = Lease("training", key, "training", "renewing", clock=lambda: now["t"])
    assert holder.try_acquire() is None
    now["t"] = T0 + timedelta(seconds=100)
    assert holder.renew() is True
    after_first_expiry = T0 + timedelta(seconds=leases.TTL_S + 50)
    contender = Lease("training", key, "training", "contender", clock=at(after_first_expiry))
    seen = contender.try_acquire()
    assert seen is not None and seen.purpose == "renewing"
    holder.release()


def test_the_heartbeat_renews_while_the_block_runs(key: str) -> None:
    lease = Lease("training", key, "training", "beating", ttl_s=0.3)
    observer = training_lease(key, "observer")
    with lease.held(wait_s=0):
        first = observer._read()
        deadline = time.monotonic() + 30
        while (later := observer._read()) is not None and later[1] == first[1]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.02)
        assert later is not None and later[0] == first[0]  # type: ignore[index]
        assert later[1].expires_at > first[1].expires_at  # type: ignore[index]
    assert observer._read() is None


@pytest.mark.parametrize("interruption", [RuntimeError("the run failed"), KeyboardInterrupt()])
def test_the_lease_is_released_on_failure_and_ctrl_c(key: str, interruption: BaseException) -> None:
    lease = training_lease(key, "run")
    with pytest.raises(type(interruption)), lease.held(wait_s=0):
        raise interruption
    assert lease_secrets(lease) == []


def test_a_crashed_holder_on_this_machine_is_broken_at_once(key: str) -> None:
    code = (
        "import sys\n"
        "from annotation_loop.zenml_integration.leases import training_lease\n"
        "assert training_lease(sys.argv[1], 'a run killed with -9').try_acquire() is None\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, key],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        lease = training_lease(key, "next run")
        holder = lease.try_acquire()
        assert holder is not None and holder.pid == child.pid  # alive: waited for
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert lease.try_acquire() is None  # its process is gone: long before the lease expires
    lease.release()


def test_of_two_users_racing_past_the_stores_check_neither_keeps_the_lease(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Public secrets of two users are kept unique by a check, not an index: insert a rival's
    # secret as if another user's create had passed that check at the same moment.
    lease = training_lease(key, "racing")
    rival_user = Client().create_user(name=f"rival-{key}", password="not-used-1234")
    create = Client.create_secret

    def create_beside_a_rival(client: Client, name: str, values: dict, private: bool) -> object:
        created = create(client, name, values, private=private)
        with Session(client.zen_store.engine) as session:  # type: ignore[attr-defined]
            session.add(SecretSchema(name=name, private=False, user_id=rival_user.id))
            session.commit()
        return created

    monkeypatch.setattr(Client, "create_secret", create_beside_a_rival)
    assert lease.try_acquire() is not None
    [rival] = Client().list_secrets(name=f"equals:{lease.name}").items
    assert rival.user is not None and rival.user.id == rival_user.id
    Client().zen_store.delete_secret(rival.id)


# -- the commands under their leases ---------------------------------------------------


class Stop(Exception):
    """Ends a run right after it got past its lease."""


@pytest.fixture
def settings(key: str) -> Settings:
    return Settings(model_name=key, project_name=f"project {key}", lease_wait=0)


@pytest.fixture
def entered(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], threading.Event]:
    """Runs get past their lease into `prepare_stack` (recorded), where the first one waits
    until the event is set; every run then stops."""
    calls: list[str] = []
    release_first = threading.Event()

    def prepare_stack(cloud: str, settings: Settings) -> None:
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            assert release_first.wait(60)
        raise Stop

    monkeypatch.setattr(training, "prepare_stack", prepare_stack)
    monkeypatch.setattr(inference, "prepare_stack", prepare_stack)
    return calls, release_first


def test_a_second_training_run_at_once_stops_with_one_line(
    settings: Settings, entered: tuple[list[str], threading.Event]
) -> None:
    calls, release_first = entered
    with ThreadPoolExecutor(1, thread_name_prefix="first") as pool:
        first = pool.submit(app.train, "aws", settings, False)
        while not calls:
            assert not first.done(), first.exception()
            time.sleep(0.01)
        with pytest.raises(LeaseHeld) as refused:
            app.train("local", settings, True)
        release_first.set()
        assert isinstance(first.exception(60), Stop)
    message = str(refused.value)
    assert isinstance(refused.value, LoopError) and "\n" not in message
    assert f"run.py aws --train (pid {os.getpid()}" in message
    assert f"training of {settings.model_name!r}" in message
    assert len(calls) == 1
    assert training_lease(settings.model_name, "x").holder() is None  # let go on failure


def test_a_second_training_run_waits_for_the_first(
    settings: Settings,
    entered: tuple[list[str], threading.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls, release_first = entered
    waiting: list[str] = []
    patient = settings.model_copy(update={"lease_wait": 60.0})
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(app.train, "local", settings, False)
        while not calls:
            assert not first.done(), first.exception()
            time.sleep(0.01)
        second = pool.submit(app.train, "local", patient, True, waiting.append)
        while not waiting:
            assert not second.done(), second.exception()
            time.sleep(0.01)
        assert len(calls) == 1  # the second waits outside
        release_first.set()
        assert isinstance(first.exception(60), Stop)
        assert isinstance(second.exception(60), Stop)
    assert len(calls) == 2
    assert waiting[0].startswith("Waiting for run.py local --train (pid")


def test_inference_runs_on_one_project_exclude_each_other_not_training(
    settings: Settings, entered: tuple[list[str], threading.Event]
) -> None:
    calls, release_first = entered
    release_first.set()
    other = inference_lease(settings.label_studio_url, settings.project_name, "a sync elsewhere")
    assert other.try_acquire() is None
    try:
        with pytest.raises(LeaseHeld, match=r"a sync elsewhere .* inference on the Label Studio"):
            app.infer("local", settings, False)
        assert calls == []
        with pytest.raises(Stop):  # training the project's model is another lease
            app.train("local", settings, False)
        assert len(calls) == 1
    finally:
        other.release()
