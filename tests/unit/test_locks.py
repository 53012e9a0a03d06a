"""The committed lock files agree with what the project asks for, so `make install`, which
installs only from them, gives every dependency pyproject.toml names."""

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = ROOT / "requirements.lock"
LS_LOCK = ROOT / "tools" / "label-studio" / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, str]:
    """name -> version of every package a pip-style lock file pins."""
    found = {}
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            found[canonicalize_name(match[1])] = match[2]
    return found


@pytest.mark.parametrize(
    "requirement",
    [
        Requirement(line)
        for line in PROJECT["project"]["dependencies"]
        + PROJECT["project"]["optional-dependencies"]["dev"]
    ],
    ids=str,
)
def test_the_lock_pins_each_dependency_within_its_range(requirement):
    locked = pins(LOCK)
    name = canonicalize_name(requirement.name)
    assert name in locked, f"{name} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(locked[name], prereleases=True), (
        f"requirements.lock pins {name}=={locked[name]}, outside {requirement}: run `make lock`"
    )


def test_the_locked_torch_loads_weights_only_by_default():
    major, minor = pins(LOCK)["torch"].split(".")[:2]
    assert (int(major), int(minor)) >= (2, 6)


@pytest.mark.parametrize("lock", [LOCK, LS_LOCK], ids=["project", "label-studio"])
def test_every_pin_has_hashes_and_no_registry_address(lock):
    text = lock.read_text()
    entries = re.findall(r"^[A-Za-z0-9].*?(?=^[A-Za-z0-9]|\Z)", text, re.MULTILINE | re.DOTALL)
    assert entries and all("--hash=sha256:" in entry for entry in entries)
    assert "://" not in text  # a lock says what to install, not where from


def test_the_label_studio_lock_pins_the_release_asked_for():
    asked = (ROOT / "tools" / "label-studio" / "requirements.in").read_text().splitlines()
    (server,) = [Requirement(line) for line in asked if line and not line.startswith("#")]
    assert server.specifier.contains(pins(LS_LOCK)[canonicalize_name(server.name)])


def test_azurite_is_locked_at_the_release_that_runs_on_node_20():
    folder = ROOT / "tools" / "azurite"
    package = json.loads((folder / "package.json").read_text())
    lock = json.loads((folder / "package-lock.json").read_text())
    assert package["dependencies"] == {"azurite": "3.35.0"}
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"]["node_modules/azurite"]["version"] == "3.35.0"
    assert all("integrity" in entry for key, entry in lock["packages"].items() if key)
