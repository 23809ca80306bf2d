"""cluster/head_python.py: the probe that finds the head's Python for a job's driver, run
here in a real shell exactly as Ray's job supervisor runs an entrypoint (`/bin/sh -c`), with
interpreters that have, lack or are not there. (On a real cluster, where the nodes' PATH
lacks the virtualenv: tests/test_cluster_jobs.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster import head_python


def _run_probe(pythons: list[str], modules: list[str]) -> dict[str, dict[str, object]]:
    proc = subprocess.run(
        head_python.probe_entrypoint(pythons, modules),
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return head_python.probe_reports(proc.stdout + proc.stderr)


def test_dependency_modules_are_import_names_in_declared_order() -> None:
    modules = head_python.dependency_modules()
    assert modules[:2] == ["torch", "ray"]  # pyproject.toml's first two
    for module in ("grpc", "yaml", "google", "typer", "redis", "mujoco"):
        assert module in modules, modules
    assert "pytest" not in modules  # the dev extra is not the job's business
    assert "pytest" in head_python.dependency_modules(extra="dev")


def test_the_first_candidate_with_every_module_is_chosen(tmp_path: Path) -> None:
    # A "python" that has nothing: a bare interpreter (-S: no site-packages) under a name
    # that a shell finds first on PATH, as the system Python was on the reported cluster.
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    bare.chmod(0o755)
    missing_one = str(tmp_path / "nowhere" / "python")
    pythons = [str(bare), missing_one, sys.executable]
    modules = ["json", "ray", "typer"]

    reports = _run_probe(pythons, modules)
    assert set(reports) == {str(bare), sys.executable}  # the absent one printed nothing
    assert reports[str(bare)]["missing"] == ["ray", "typer"]
    assert reports[sys.executable]["missing"] == []
    assert head_python.choose(pythons, reports) == sys.executable

    with pytest.raises(ValueError) as error:
        head_python.choose(pythons[:2], reports)
    message = str(error.value)
    assert "\n" not in message
    assert f"`{bare}`" in message and "lacks ray, typer" in message
    assert f"{missing_one} is not there" in message
    assert "source .venv/bin/activate" in message and "--python" in message


def test_a_long_list_of_missing_modules_is_cut_short() -> None:
    reports = {
        "python": {
            "candidate": "python",
            "executable": "/usr/bin/python3",
            "version": "3.11.2",
            "missing": ["torch", "ray", "pettingzoo", "gymnasium", "redis", "grpc"],
        }
    }
    with pytest.raises(ValueError, match=r"lacks torch, ray, pettingzoo, gymnasium and 2 more"):
        head_python.choose(["python"], reports)


def test_candidates() -> None:
    assert head_python.candidates("/opt/venv/bin/python") == ["/opt/venv/bin/python"]
    assert head_python.candidates(None) == ["python", sys.executable]
