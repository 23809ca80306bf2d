"""`selfplay submit | status | logs | stop | scale`: jobs on a Ray cluster (cluster/control.py
says how they reach a running job). Every command takes `--address` (the head's Job
Submission API, default $RAY_ADDRESS or http://127.0.0.1:8265); Ray's token auth reads
RAY_AUTH_TOKEN."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cluster.control import Cluster, ControlError, NoControl

AddressOption = Annotated[
    str,
    typer.Option(envvar="RAY_ADDRESS", help="Ray Job Submission API of the cluster's head node"),
]
DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def _fail(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(2)


def _cluster(address: str) -> Cluster:
    if not address.startswith(("http://", "https://")):
        raise _fail(f"--address must be the Job API URL (http://HEAD:8265), got {address!r}")
    return Cluster(address)


def submit(
    config: Path,
    address: AddressOption = DEFAULT_ADDRESS,
    redis_url: Annotated[
        str | None,
        typer.Option(help="Redis every node can reach (password from SELFPLAY_REDIS_PASSWORD)"),
    ] = None,
    actors: Annotated[int | None, typer.Option(help="rollout actors to start with")] = None,
    minutes: Annotated[float | None, typer.Option(help="stop after this long")] = None,
    out: Annotated[
        str | None,
        typer.Option(
            help="run dir on the cluster (default ~/selfplay-runs/JOB_ID); the "
            "learners write checkpoints there, so use a path all nodes share"
        ),
    ] = None,
    working_dir: Annotated[
        Path, typer.Option(help="shipped to the cluster (runtime_env); holds CONFIG")
    ] = Path("."),
    requirements: Annotated[
        bool,
        typer.Option(
            help="also pip-install the project's dependencies (pyproject.toml) through "
            "the job's runtime_env, for nodes without them (the selfplay image has them)"
        ),
    ] = False,
    python: Annotated[
        str | None,
        typer.Option(
            help="the head node's Python that runs the job (default: `python` on the head's "
            "PATH if it has the project's dependencies, else this CLI's interpreter if the "
            "head has it); checked before the job is submitted"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="dotted.key=value override")
    ] = None,
) -> None:
    """Submit CONFIG as a Ray job on a cluster; prints the job id."""
    from cluster.checks import check_job
    from core.config import ConfigError, load_config

    try:
        check_job(load_config(config, list(set_ or [])))  # bad configs fail here, not there
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if actors is not None and actors < 0:
        raise _fail(f"--actors must be >= 0, got {actors}")
    cluster = _cluster(address)
    try:
        job_id = cluster.submit(
            config,
            working_dir,
            out or "",
            redis_url,
            actors,
            minutes,
            list(set_ or []),
            _project_requirements(working_dir) if requirements else None,
            python,
        )
    except ControlError as exc:
        raise _fail(str(exc)) from None
    print(job_id)


def status(
    job: str,
    address: AddressOption = DEFAULT_ADDRESS,
) -> None:
    """A job's state: Ray's status, and while it runs its actors, throughput, learner
    versions, policy lag, stream depth and league size (JSON)."""
    cluster = _cluster(address)
    try:
        info = cluster.info(job)
        answer: dict[str, Any] = {**info}
        if info["ray_status"] == "RUNNING":
            try:
                answer["job"] = cluster.ask(job, "status")
            except NoControl:
                # The driver is still starting (Redis, league, learners) or is not ours.
                answer["job"] = {"state": "starting"}
    except ControlError as exc:
        raise _fail(str(exc)) from None
    print(json.dumps(answer, indent=2))


def logs(
    job: str,
    address: AddressOption = DEFAULT_ADDRESS,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="stream until it ends")] = False,
) -> None:
    """A job's driver log (progress lines, the final JSON summary)."""
    cluster = _cluster(address)
    try:
        if not follow:
            sys.stdout.write(cluster.logs(job))
            return

        async def tail() -> None:
            async for chunk in cluster.follow_logs(job):
                sys.stdout.write(chunk)
                sys.stdout.flush()

        asyncio.run(tail())
    except ControlError as exc:
        raise _fail(str(exc)) from None


def stop(
    job: str,
    address: AddressOption = DEFAULT_ADDRESS,
    timeout: Annotated[
        float, typer.Option(help="seconds to wait for the clean stop before Ray's stop_job")
    ] = 300.0,
) -> None:
    """Stop a job cleanly: actors drain, learners write final checkpoints."""
    cluster = _cluster(address)
    try:
        _ask_when_up(cluster, job, "stop")
        deadline = time.monotonic() + timeout
        info = cluster.info(job)
        while info["ray_status"] in ("PENDING", "RUNNING") and time.monotonic() < deadline:
            time.sleep(1.0)
            info = cluster.info(job)
        if info["ray_status"] in ("PENDING", "RUNNING"):
            cluster.client().stop_job(job)
            raise _fail(f"{job} did not stop within {timeout:.0f}s; asked Ray to stop it")
    except ControlError as exc:
        raise _fail(str(exc)) from None
    print(json.dumps(info))


def scale(
    job: str,
    actors: Annotated[int, typer.Option(help="rollout actors the job should run")],
    address: AddressOption = DEFAULT_ADDRESS,
) -> None:
    """Grow or shrink a running job's rollout actors (leaving actors drain first)."""
    if actors < 0:
        raise _fail(f"--actors must be >= 0, got {actors}")
    cluster = _cluster(address)
    try:
        answer = _ask_when_up(cluster, job, "scale", str(actors))
    except ControlError as exc:
        raise _fail(str(exc)) from None
    print(json.dumps(answer))


def _ask_when_up(cluster: Cluster, job: str, *command: str, wait_s: float = 180.0) -> Any:
    """`cluster.ask`, waiting while the job's driver starts (Redis, league, learners: tens
    of seconds after `submit`) rather than failing on a job that has just been submitted."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return cluster.ask(job, *command)
        except NoControl:
            if time.monotonic() > deadline:
                raise ControlError(f"job {job} did not start within {wait_s:.0f}s") from None
            time.sleep(2.0)


def _project_requirements(working_dir: Path) -> list[str]:
    """The project's runtime dependencies from pyproject.toml, for runtime_env pip."""
    import tomllib

    path = working_dir / "pyproject.toml"
    if not path.exists():
        raise _fail(f"--requirements: no pyproject.toml in {working_dir}")
    return list(tomllib.loads(path.read_text())["project"]["dependencies"])


def register(app: typer.Typer) -> None:
    for command in (submit, status, logs, stop, scale):
        app.command()(command)
