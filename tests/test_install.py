"""A fresh clone installs the versions CI passed with: requirements-lock.txt pins every
package of a full install, the README's commands and .ci/run install with it, and the
environment these tests run in is that lock."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements-lock.txt"
INSTALL = ".venv/bin/pip install -q -c requirements-lock.txt -e '.[dev]'"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(d) for d in declared]


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = _pins()
    assert len(pins) > 50, "requirements-lock.txt looks empty: run deploy/lock.sh"
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements-lock.txt: run deploy/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements-lock.txt pins {name}=={pins[name]}, outside pyproject's "
            f"{requirement.specifier}: run deploy/lock.sh"
        )
        assert "+" not in pins[name], f"{name}: a local build label PyPI does not serve"


def test_readme_and_ci_install_from_the_lock() -> None:
    readme = (REPO / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2, "the README's two commands"
    assert all(INSTALL in command for command in commands), commands
    test_command = next(c for c in commands if c.endswith("-m pytest"))
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, ".ci/run must run exactly the README's test command"


def test_this_environment_is_the_lock() -> None:
    drift = []
    for name, pin in _pins().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            drift.append(f"{name}=={pin} is not installed")
            continue
        # ==2.13.0 admits the local build 2.13.0+cpu, as pip does.
        if not SpecifierSet(f"=={pin}").contains(installed, prereleases=True):
            drift.append(f"{name} {installed} (lock: {pin})")
    assert not drift, (
        "the installed packages differ from requirements-lock.txt, so results here may not "
        f"match CI's; reinstall with `{INSTALL}`: " + "; ".join(drift)
    )
