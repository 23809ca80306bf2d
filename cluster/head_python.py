"""Which Python runs a submitted job's driver on the head node.

Ray runs a job's entrypoint in a shell whose PATH is the one `ray start` had. Started as
`.venv/bin/ray start` from a shell where the virtualenv is not activated, `python` there is
the system's, which lacks the project's dependencies: the job died at once with
ModuleNotFoundError, after `submit` had printed its id. So `selfplay submit` first runs a
probe job (a stdlib-only `python -c` program per candidate interpreter, no working dir, a
second or two) in which each candidate reports the project's modules it cannot find. The
first candidate that has them all runs the job and its control jobs (cluster/control.py
keeps it in the job's metadata); if none does, submit fails with one line that says what is
missing and how to fix it.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import shlex
import sys
from collections.abc import Callable
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

FIX = (
    "start Ray from the virtualenv that has selfplay installed (`source .venv/bin/activate`, "
    "then `ray start ...`), run the nodes from the selfplay image (deploy/), name the head's "
    "interpreter with --python, or pass --requirements"
)


def candidates(explicit: str | None) -> list[str]:
    """Interpreters to try, best first: the one the user named, else `python` on the head's
    PATH (an activated virtualenv, the selfplay image), then this CLI's own interpreter's
    path, which is the cluster's on one machine or where nodes share one install."""
    if explicit:
        return [explicit]
    return list(dict.fromkeys(["python", sys.executable]))


def dependency_modules(distribution: str = "selfplay", extra: str = "") -> list[str]:
    """Top-level import names of `distribution`'s requirements (those of `extra` too, if
    named), as this machine has them installed (grpcio -> grpc, pyyaml -> yaml, ...), in
    the order they are declared: the first ones name the problem best (torch, ray, ...)."""
    modules_of: dict[str, list[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for name in distributions:
            modules_of.setdefault(canonicalize_name(name), []).append(module)
    modules: dict[str, None] = {}
    for text in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        found = sorted(m for m in modules_of.get(name, []) if m.isidentifier() and m[0] != "_")
        natural = name.replace("-", "_")
        modules[natural if natural in found else found[0] if found else natural] = None
    return list(modules)


def python_c(python: str, program: Callable[[list[str]], int], *args: str) -> str:
    """A shell command that runs `program(argv)` (a self-contained function: its imports
    inside it) under `python`, with `args` as argv."""
    source = inspect.getsource(program)
    text = f"{source}\nimport sys\nsys.exit({program.__name__}(sys.argv[1:]))\n"
    return " ".join(shlex.quote(a) for a in (python, "-c", text, *args))


def _probe_main(argv: list[str]) -> int:
    """On the head, under one candidate: one JSON line naming the modules it lacks. Only the
    standard library, since the point is that the interpreter may have nothing else."""
    import importlib.util
    import json
    import sys

    candidate, modules = argv[0], [m for m in argv[1].split(",") if m]
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    version = ".".join(str(part) for part in sys.version_info[:3])
    report = {"candidate": candidate, "executable": sys.executable, "version": version}
    print(json.dumps({"selfplay_probe": {**report, "missing": missing}}))
    return 0


def probe_entrypoint(pythons: list[str], modules: list[str]) -> str:
    """One shell line that runs the probe under each candidate in turn (a candidate that
    does not exist prints a shell error and no report)."""
    return " ; ".join(python_c(p, _probe_main, p, ",".join(modules)) for p in pythons)


def probe_reports(logs: str) -> dict[str, dict[str, Any]]:
    """The candidates' reports in a probe job's log, by candidate."""
    reports = {}
    for line in logs.splitlines():
        if line.startswith('{"selfplay_probe"'):
            report = json.loads(line)["selfplay_probe"]
            reports[report["candidate"]] = report
    return reports


def choose(pythons: list[str], reports: dict[str, dict[str, Any]]) -> str:
    """The first candidate that has every module; else ValueError with one line: what each
    candidate lacks, and the fix."""
    for python in pythons:
        if python in reports and not reports[python]["missing"]:
            return python
    problems = []
    for python in pythons:
        report = reports.get(python)
        if report is None:
            problems.append(f"{python} is not there")
            continue
        missing = report["missing"]
        named = ", ".join(missing[:4])
        if len(missing) > 4:
            named += f" and {len(missing) - 4} more"
        where = f"{report['executable']}, Python {report['version']}"
        problems.append(f"`{python}` ({where}) lacks {named}")
    problem = "; ".join(problems)
    raise ValueError(f"the head node's Python cannot run the job: {problem}. Fix: {FIX}")
