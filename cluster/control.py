"""Talking to a job that runs on a Ray cluster: submit, status, scale, logs, stop.

Everything goes through the address a user already has, the head's Job Submission API
(http://HEAD:8265, token from RAY_AUTH_TOKEN). A submitted job's driver (`selfplay run
--ray-address auto --control NAME`) creates a small named actor, its mailbox (JobControl
below), in the "selfplay" namespace. `status`, `scale` and `stop` are tiny Ray jobs of
their own (`control_entrypoint`: a self-contained `python -c` program, run by the
interpreter that `submit` found on the head: cluster/head_python.py) that look that actor up
by name and print one JSON line, which the CLI reads back from the control job's logs.
Costs a few seconds per command (a driver process on the head), needs no extra port, no
Ray Client and no access to the job's Redis, and works the same for a job started by
`kubectl` (KubeRay RayJob: its metadata names no interpreter, so `python` runs them).

The driver polls its mailbox about once a second: a new actor count is applied at once
(growing starts actors, shrinking drains them: cluster/fleet.py), a stop request ends
the run cleanly (actors drain, the learners write final checkpoints), like Ctrl-C.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster import head_python

NAMESPACE = "selfplay"
MAX_ACTORS = 1024
# Files the cluster does not need from the working dir (runs, virtualenvs, caches).
EXCLUDES = [".venv", "runs", ".git", "__pycache__", "*.pyc", ".ruff_cache", ".pytest_cache"]


class ControlError(RuntimeError):
    pass


class NoControl(ControlError):
    """The job runs but has no control actor (yet): its driver is still starting."""


def control_name(job_id: str) -> str:
    return f"selfplay-control-{job_id}"


class JobControl:
    """The running job's mailbox (a Ray actor; the driver owns it, so it dies with the
    job): the actor count it should have, whether it should stop, its latest status."""

    def __init__(self, actors: int) -> None:
        self._desired = actors
        self._stop = False
        self._status: dict[str, Any] = {}
        self._fleet = {"active": actors, "draining": 0}

    def scale(self, actors: int) -> dict[str, Any]:
        if not 0 <= actors <= MAX_ACTORS:
            raise ValueError(f"actors must be between 0 and {MAX_ACTORS}, got {actors}")
        self._desired = actors
        return {"desired_actors": actors}

    def request_stop(self) -> dict[str, Any]:
        self._stop = True
        return {"stop_requested": True}

    def poll(self) -> tuple[int, bool]:
        """(desired actor count, stop requested): the driver's side."""
        return self._desired, self._stop

    def report(self, status: dict[str, Any]) -> None:
        """The driver's latest progress sample (cluster/status.py fields)."""
        self._status = status

    def note_fleet(self, active: int, draining: int) -> None:
        """The driver's actor counts, sent whenever they change (between samples)."""
        self._fleet = {"active": active, "draining": draining}

    def status(self) -> dict[str, Any]:
        return {
            **self._status,
            "desired_actors": self._desired,
            "fleet": self._fleet,
            "stop_requested": self._stop,
        }


def create_control(name: str, actors: int) -> Any:
    """The driver's mailbox actor under `name` (one per job: a second driver with the
    same name fails here, not later)."""
    import ray

    actor_class = ray.remote(num_cpus=0, max_concurrency=4)(JobControl)
    return actor_class.options(name=name, namespace=NAMESPACE, lifetime=None).remote(actors)


# -- the user's side: Job Submission API --------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    address: str  # http://HEAD:8265

    def client(self) -> Any:
        from ray.job_submission import JobSubmissionClient

        token = os.environ.get("RAY_AUTH_TOKEN")
        try:
            return JobSubmissionClient(self.address)
        except Exception as exc:  # Ray raises plain Exceptions / ConnectionError here
            raise ControlError(_explain(exc, self.address, token)) from None

    def submit(
        self,
        config_path: Path,
        working_dir: Path,
        out: str,
        redis_url: str | None,
        actors: int | None,
        minutes: float | None,
        overrides: list[str],
        requirements: list[str] | None = None,
        python: str | None = None,
    ) -> str:
        """Submits `selfplay run` as a Ray job; returns its id (the JOB of the other
        commands). The config travels inside the working dir (runtime_env), so its path
        must be inside `working_dir`. `python`: the head's interpreter for the driver
        (default: found by a probe job, cluster/head_python.py)."""
        config_rel = _inside(config_path, working_dir)
        client = self.client()
        # With `requirements` Ray installs them into a virtualenv of the job's own, whose
        # `python` it puts first on the driver's PATH; the control jobs still need Ray.
        modules = ["ray"] if requirements else head_python.dependency_modules()
        control_python = self.find_python(client, head_python.candidates(python), modules)
        job_id = f"selfplay-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        out = out or f"~/selfplay-runs/{job_id}"  # `selfplay run` expands the ~
        args = [str(config_rel), "--out", out, "--ray-address", "auto"]
        args += ["--control", control_name(job_id)]
        if redis_url:
            args += ["--redis-url", redis_url]
        if actors is not None:
            args += ["--actors", str(actors)]
        if minutes is not None:
            args += ["--minutes", str(minutes)]
        for item in overrides:
            args += ["--set", item]
        driver_python = "python" if requirements else control_python
        entrypoint = " ".join(
            shlex.quote(a) for a in (driver_python, "-m", "cluster.cli", "run", *args)
        )
        runtime_env: dict[str, Any] = {"working_dir": str(working_dir), "excludes": EXCLUDES}
        if requirements:
            runtime_env["pip"] = requirements
        env_vars = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        if env_vars:
            runtime_env["env_vars"] = env_vars
        try:
            _submit_job(
                client,
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env=runtime_env,
                metadata={PYTHON_KEY: control_python},
            )
        except Exception as exc:
            token = os.environ.get("RAY_AUTH_TOKEN")
            raise ControlError(_explain(exc, self.address, token)) from None
        return job_id

    def find_python(self, client: Any, pythons: list[str], modules: list[str]) -> str:
        """The first of `pythons` that can import `modules` on the head (a probe job)."""
        probe_id = f"selfplay-probe-{uuid.uuid4().hex[:8]}"
        try:
            _submit_job(
                client,
                entrypoint=head_python.probe_entrypoint(pythons, modules),
                submission_id=probe_id,
            )
        except Exception as exc:
            token = os.environ.get("RAY_AUTH_TOKEN")
            raise ControlError(_explain(exc, self.address, token)) from None
        _, logs = _wait_for(client, probe_id, timeout_s=120.0)
        try:
            return head_python.choose(pythons, head_python.probe_reports(logs))
        except ValueError as exc:
            raise ControlError(str(exc)) from None

    def info(self, job_id: str) -> dict[str, Any]:
        client = self.client()
        try:
            details = client.get_job_info(job_id)
        except Exception as exc:
            raise ControlError(f"job {job_id}: {exc}") from None
        return {
            "job_id": job_id,
            "ray_status": str(getattr(details.status, "value", details.status)),
            "message": details.message,
            "start_time": details.start_time,
            "end_time": details.end_time,
        }

    def logs(self, job_id: str) -> str:
        try:
            return str(self.client().get_job_logs(job_id))
        except Exception as exc:
            raise ControlError(f"job {job_id}: {exc}") from None

    def follow_logs(self, job_id: str) -> Any:
        """An async iterator of log chunks until the job ends."""
        return self.client().tail_job_logs(job_id)

    def ask(self, job_id: str, command: str, *args: str, timeout_s: float = 120.0) -> Any:
        """Runs `command` (scale N | status | stop) against the job's mailbox as a
        control job on the cluster; returns the JSON it printed."""
        from ray.job_submission import JobStatus

        client = self.client()
        try:
            info = client.get_job_info(job_id)
        except Exception as exc:
            raise ControlError(f"job {job_id}: {exc}") from None
        if info.status.is_terminal():
            raise ControlError(f"job {job_id} is not running ({info.status.value})")
        control_id = f"{job_id}-{command}-{uuid.uuid4().hex[:6]}"
        python = (info.metadata or {}).get(PYTHON_KEY, "python")
        entrypoint = control_entrypoint(python, command, control_name(job_id), *args)
        _submit_job(client, entrypoint=entrypoint, submission_id=control_id)
        status, logs = _wait_for(client, control_id, timeout_s)
        for line in reversed(logs.strip().splitlines()):
            if line.startswith("{"):
                answer = json.loads(line)
                if answer.get("no_control"):
                    raise NoControl(f"job {job_id} is starting (no control actor yet)")
                if "error" in answer:
                    raise ControlError(answer["error"])
                return answer
        if status != JobStatus.SUCCEEDED:
            raise ControlError(f"control job {control_id} {status.value}: {logs[-2000:]}")
        raise ControlError(f"control job {control_id} printed no answer: {logs[-2000:]}")


_PASS_ENV = ("SELFPLAY_REDIS_PASSWORD", "SELFPLAY_LEAGUE_TOKEN")
# Job metadata key: the head's interpreter that `submit` chose, for the control jobs.
PYTHON_KEY = "selfplay_python"
# Ray answers this (HTTP 500) while a node's job agent is still starting, e.g. for a
# while after `ray start` on a busy machine: worth waiting for, unlike other errors.
# 60 s was not always enough on the 2-core machine with a training run beside the tests
# (the agent of a freshly started two-node test cluster).
_AGENT_STARTING = "No available agent to submit job"


def _submit_job(client: Any, wait_s: float = 120.0, **kwargs: Any) -> None:
    """`client.submit_job(**kwargs)`, retried while the cluster's job agent starts."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.submit_job(**kwargs)
            return
        except Exception as exc:  # the SDK raises plain RuntimeErrors for HTTP errors
            if _AGENT_STARTING not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _wait_for(client: Any, submission_id: str, timeout_s: float) -> tuple[Any, str]:
    """Waits for a short job (control, probe) to end: (its final status, its log)."""
    deadline = time.monotonic() + timeout_s
    status = client.get_job_status(submission_id)
    while not status.is_terminal():
        if time.monotonic() > deadline:
            client.stop_job(submission_id)
            raise ControlError(f"job {submission_id} did not finish in {timeout_s}s")
        time.sleep(0.25)
        status = client.get_job_status(submission_id)
    return status, client.get_job_logs(submission_id)


def _inside(path: Path, root: Path) -> Path:
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ControlError(
            f"{path} is outside the working dir {root} that is shipped to the cluster"
        ) from None


def _explain(exc: BaseException, address: str, token: str | None) -> str:
    text = str(exc)
    low = text.lower()
    if "401" in text or "unauthenticated" in low or "unauthorized" in low or "token" in low:
        if os.environ.get("RAY_AUTH_MODE") != "token":
            return (
                f"{address} refused the request: it uses token auth; set RAY_AUTH_MODE=token "
                "and RAY_AUTH_TOKEN (the cluster's token: `ray get-auth-token` on the head)"
            )
        if not token:
            return (
                f"{address} refused the request: it needs a Ray auth token; set RAY_AUTH_TOKEN "
                "(the cluster's token: `ray get-auth-token` on the head)"
            )
        return f"{address} refused the request: RAY_AUTH_TOKEN is not this cluster's token"
    return f"cannot reach the Ray Job API at {address}: {text.splitlines()[0] if text else exc}"


# -- the control job's side (runs on the cluster) -------------------------------------------


def _control_main(argv: list[str]) -> int:
    """The control job's program: `scale N | status | stop` on the named mailbox, one JSON
    line out. Self-contained (only json, sys and ray), because it is shipped as the
    source of a `python -c` entrypoint without the job's working dir: reusing that
    runtime env raced with the job's own driver (Ray garbage-collected the unpacked
    working dir when the first control job ended, and the job's driver lost its cwd)."""
    import json
    import sys

    import ray

    command, name, rest = argv[0], argv[1], argv[2:]
    ray.init(address="auto", namespace="selfplay", logging_level="WARNING")
    try:
        try:
            control = ray.get_actor(name, namespace="selfplay")
        except ValueError:
            error = f"no running selfplay job with control {name!r}"
            print(json.dumps({"error": error, "no_control": True}))
            return 1
        if command == "scale":
            answer = ray.get(control.scale.remote(int(rest[0])))
        elif command == "status":
            answer = ray.get(control.status.remote())
        elif command == "stop":
            answer = ray.get(control.request_stop.remote())
        else:
            answer = {"error": f"unknown control command {command!r}"}
        print(json.dumps(answer))
        sys.stdout.flush()
        return 0
    except (ray.exceptions.RayError, ValueError) as exc:
        print(json.dumps({"error": str(exc).splitlines()[0]}))
        return 1
    finally:
        ray.shutdown()


def control_entrypoint(python: str, command: str, name: str, *args: str) -> str:
    """The shell command of a control job: `_control_main` run by `python -c`."""
    return head_python.python_c(python, _control_main, command, name, *args)
