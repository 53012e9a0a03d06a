"""Two `run.py local --train` at once against the real Label Studio: one trains, the other
stops with one line, and the model gets one version."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.data.storage import ObjectStore
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import PROJECT_ROOT
from annotation_loop.vision.mnist import seed_mnist_batches
from annotation_loop.zenml_integration.leases import training_lease

pytestmark = pytest.mark.integration


def test_a_second_training_run_at_once_stops_with_one_line(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    store.ensure_bucket()
    truth = seed_mnist_batches(store, batches=1, batch_size=30, seed=5)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    synced = app.infer("local", settings, rerun=False)
    label_batch_with_oracle(client, settings, "local", synced, truth)

    # Two processes, as two people (or a person and the ML backend) would start them.
    env = {**os.environ, **settings.environment(), "LOOP_LEASE_WAIT": "0"}
    command = [sys.executable, str(PROJECT_ROOT / "run.py"), "local", "--train"]
    first = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        lease = training_lease(settings.model_name, "test")
        deadline = time.monotonic() + 120
        while (holder := lease.holder()) is None:
            assert first.poll() is None, first.communicate()[0].decode()
            assert time.monotonic() < deadline, "the first run never took its lease"
            time.sleep(0.2)
        assert holder.pid == first.pid
        second = subprocess.run(
            command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        output = first.communicate(timeout=600)[0].decode()
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 1, second.stdout + second.stderr
    assert second.stdout == ""
    [line] = second.stderr.strip().splitlines()
    assert line.startswith(f"Error: run.py local --train (pid {first.pid} on ")
    assert f"is running the training of {settings.model_name!r}" in line
    assert first.returncode == 0, output
    assert f"Trained {settings.model_name}:1" in output
    versions = Client().list_model_versions(model=settings.model_name)
    assert [v.name for v in versions.items] == ["1"]
    assert lease.holder() is None  # let go when it finished
