"""The lock files agree with the requirement ranges: every requirement is pinned, at a version
its range allows, and the test and bench locks pin the runtime exactly as requirements.lock
does (run bin/lock after editing a requirements file)."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testing.servers import PROJECT_DIR

LOCKS = {
    "requirements.lock": ["requirements.txt"],
    "requirements-test.lock": ["requirements.txt", "requirements-test.txt"],
    "bench/requirements.lock": ["requirements.txt", "bench/requirements.txt"],
}


def _requirements(name: str) -> list[Requirement]:
    lines = (PROJECT_DIR / name).read_text().splitlines()
    return [Requirement(line.split("#")[0]) for line in lines if line.split("#")[0].strip()]


def _pins(name: str) -> dict[str, str]:
    text = (PROJECT_DIR / name).read_text()
    return {canonicalize_name(n): v for n, v in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M)}


@pytest.mark.parametrize("lock", LOCKS)
def test_every_requirement_is_pinned_within_its_range(lock):
    pins = _pins(lock)
    for source in LOCKS[lock]:
        for requirement in _requirements(source):
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{requirement.name} ({source}) is not in {lock}: run bin/lock"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{lock} pins {name}=={pins[name]}, outside {source}'s {requirement.specifier}: run bin/lock"
            )


@pytest.mark.parametrize("lock", ["requirements-test.lock", "bench/requirements.lock"])
def test_every_lock_installs_the_runtime_of_requirements_lock(lock):
    runtime, pins = _pins("requirements.lock"), _pins(lock)
    assert {name: pins.get(name) for name in runtime} == runtime


def test_every_pin_has_a_hash():
    for lock in LOCKS:
        text = (PROJECT_DIR / lock).read_text()
        assert text.count("==") == len(re.findall(r"^[A-Za-z0-9].*==.*\\$\n\s+--hash=sha256:", text, re.M)), lock
