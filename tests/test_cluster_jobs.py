"""A real two-node Ray cluster on this machine (`ray start --head` and a second `ray start
--address` with its own resources, token auth on), driven only through the CLI a user
has: `selfplay submit`, `status`, `scale` 1 -> 3 -> 1, `logs`, `stop`. The nodes are started
the way a user without an activated virtualenv starts them, so the job's driver and control
jobs run the interpreter that `submit` found (cluster/head_python.py). One rollout actor
process is killed mid-job; Ray restarts it and the job goes on. At the end the stream
and actor accounting must show every chunk produced consumed or dropped for lag, none
twice. Slow-ish (two Ray nodes, several control jobs), so it is the one test of this kind.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.waiting import wait_until
from transport.streams import every_chunk_accounted_for

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
POLL_S = 1.0  # the waits below shell out to `ray status` or `selfplay status`: poll gently
SMALL = {
    "model.hidden": "[32, 32]",
    "actors.envs_per_actor": "8",
    "actors.chunk_length": "16",
    "algorithm.batch_chunks": "8",
    "algorithm.minibatches": "2",
    "league.snapshot_every_versions": "5",
    "dashboard.enabled": "false",
    # A Ray actor's CPU share: 0.5 lets 3 actors and the learner fit on 2 + 2 CPUs.
    "actors.num_cpus": "0.5",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RayCluster:
    """Two `ray start --block` processes, each in its own session so teardown can kill
    exactly its process groups (never `ray stop`, which stops every Ray on the machine)."""

    def __init__(self, tmp: Path) -> None:
        self.token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            # As `.venv/bin/ray start` from a shell without the virtualenv activated: `python`
            # on the nodes' PATH is not the one with the project (submit must find that).
            "PATH": os.pathsep.join(
                d for d in os.environ.get("PATH", "").split(os.pathsep) if Path(d) != BIN
            ),
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.gcs_port, self.dashboard_port = _free_port(), _free_port()
        # Unix socket paths must stay short: a short temp dir of our own.
        self.temp_dir = Path(f"/tmp/rt{secrets.token_hex(3)}")
        self.worker_temp_dir = Path(f"{self.temp_dir}w")
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.gcs = f"127.0.0.1:{self.gcs_port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs = tmp

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 (kept open for the node)
        # Each node's agents on free ports: with Ray's defaults (52365, ...) another Ray on
        # this machine (a training run beside the tests) kept the head's job agent from
        # starting, and every submission failed with "No available agent".
        ports = [
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--dashboard-agent-grpc-port={_free_port()}",
            f"--runtime-env-agent-port={_free_port()}",
            f"--metrics-export-port={_free_port()}",
        ]
        self.procs.append(
            subprocess.Popen(
                [str(BIN / "ray"), "start", "--block", "--disable-usage-stats", *ports, *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self) -> None:
        self._start(
            "head",
            [
                "--head",
                f"--port={self.gcs_port}",
                f"--dashboard-port={self.dashboard_port}",
                "--dashboard-host=127.0.0.1",
                f"--ray-client-server-port={_free_port()}",
                f"--temp-dir={self.temp_dir}",
                "--num-cpus=2",
                '--resources={"head_node": 1}',
            ],
        )
        wait_until(
            lambda: "ray start --address=" in self._log("head"),
            120,
            "the head to start",
            poll_s=POLL_S,
        )
        wait_until(
            lambda: _http_ok(f"{self.address}/api/version"),
            120,
            "the head's dashboard",
            poll_s=POLL_S,
        )
        head_log = self._log("head")
        for line in head_log.splitlines():  # the GCS address Ray advertises, as printed
            if "ray start --address=" in line:
                self.gcs = line.split("--address=")[1].split("'")[1]
        # Its own temp dir, as a second machine has: with the head's, both nodes unpacked
        # the job's working_dir into one folder, and once (1 CI run in 2) the driver's
        # import found a file of it missing. The name extends the head's, so the
        # lookups by temp dir below find this node's processes too.
        self._start(
            "worker",
            [
                f"--address={self.gcs}",
                f"--temp-dir={self.worker_temp_dir}",
                "--num-cpus=2",
                '--resources={"worker_node": 1}',
            ],
        )
        wait_until(lambda: self.nodes() >= 2, 120, "the second node", poll_s=POLL_S)

    def _log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def nodes(self) -> int:
        """Alive nodes, as `ray status` counts them."""
        proc = subprocess.run(
            [str(BIN / "ray"), "status", f"--address={self.gcs}"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        active = proc.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return active.count("node_")

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        # Workers Ray started outside our process groups (reparented): by their raylet.
        for pid in _pids_under_temp_dir(self.temp_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not os.environ.get("SELFPLAY_KEEP_RAY_TMP"):  # to read Ray's logs after a failure
            # A dying Ray process may still write a file or two: remove the dirs (logs,
            # sockets, packages) once none is left, or after 30 s regardless.
            dirs = (self.temp_dir, self.worker_temp_dir)
            try:
                wait_until(
                    lambda: not any(_pids_under_temp_dir(d) for d in dirs),
                    30,
                    "Ray's processes to exit",
                    poll_s=POLL_S,
                )
            finally:
                for temp_dir in dirs:
                    shutil.rmtree(temp_dir, ignore_errors=True)

    def rollout_actor_pids(self) -> list[int]:
        """Live RolloutActor worker processes of this cluster (children of its raylets)."""
        raylets = set(_pids_under_temp_dir(self.temp_dir, "raylet"))
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if cmd.startswith("ray::RolloutActor") and ppid in raylets:
                pids.append(int(proc.name))
        return pids


def _pids_under_temp_dir(temp_dir: Path, name: str = "") -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(temp_dir) in cmd and name in cmd:
            pids.append(int(proc.name))
    return pids


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3):
            return True
    except OSError as exc:
        # 401 without the token still means the dashboard is up.
        return getattr(exc, "code", None) == 401


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RayCluster]:
    ray_cluster = RayCluster(tmp_path)
    try:
        ray_cluster.start()
        yield ray_cluster
    finally:
        ray_cluster.stop()


def _selfplay(cluster: RayCluster, *args: str, timeout: float = 180) -> str:
    proc = subprocess.run(
        [str(BIN / "selfplay"), *args, "--address", cluster.address],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"selfplay {args[0]} failed: {proc.stderr[-2000:]}"
    return proc.stdout


def _status(cluster: RayCluster, job: str) -> dict[str, Any]:
    return json.loads(_selfplay(cluster, "status", job))


def test_submit_scale_kill_stop_on_two_nodes(cluster: RayCluster, tmp_path: Path) -> None:
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
    # Token auth: a missing or wrong token is a one-line error that says which.
    for token, expect in ((None, "set RAY_AUTH_TOKEN"), ("wrong", "not this cluster's token")):
        env = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN"}
        if token is not None:
            env["RAY_AUTH_TOKEN"] = token
        proc = subprocess.run(
            [str(BIN / "selfplay"), "submit", "configs/connect_four.yaml"]
            + ["--address", cluster.address],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        assert expect in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert cluster.token not in proc.stderr
    # A head whose Python lacks the project (here: ours without site-packages): one line
    # before anything is submitted.
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S -I "$@"\n')
    bare.chmod(0o755)
    proc = subprocess.run(
        [str(BIN / "selfplay"), "submit", "configs/connect_four.yaml"]
        + ["--address", cluster.address, "--python", str(bare)],
        env=cluster.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # the probe job alone may wait 120 s on a busy machine
    )
    assert proc.returncode == 2, proc.stderr
    assert f"`{bare}`" in proc.stderr and "lacks torch, ray" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    job = _selfplay(
        cluster,
        "submit",
        "configs/connect_four.yaml",
        "--actors",
        "1",
        "--out",
        str(tmp_path / "run"),
        *sets,
    ).strip()
    assert job.startswith("selfplay-")

    def running_with(versions: int, actors: int) -> dict[str, Any] | None:
        status = _status(cluster, job)
        assert status["ray_status"] in ("PENDING", "RUNNING"), status.get("message", status)
        inner = status.get("job", {})
        fleet = inner.get("fleet", {})
        ok = (
            inner.get("learner_version", 0) >= versions
            and fleet.get("active") == actors
            and fleet.get("draining") == 0
        )
        return inner if ok else None

    first = wait_until(lambda: running_with(2, 1), 240, "the job to train", poll_s=POLL_S)
    assert first["league_players"] >= 2  # main and random at least

    _selfplay(cluster, "scale", job, "--actors", "3")
    grown = wait_until(
        lambda: running_with(first["learner_version"] + 2, 3), 180, "3 actors", poll_s=POLL_S
    )

    # Kill one rollout actor's process: Ray restarts it, the job goes on.
    pids = wait_until(
        lambda: cluster.rollout_actor_pids() or None, 60, "actor processes", poll_s=POLL_S
    )
    os.kill(pids[0], signal.SIGKILL)
    wait_until(
        lambda: (s := running_with(grown["learner_version"] + 3, 3)) and s["actors_alive"] == 3,
        240,
        "the job to go on with 3 actors after the kill",
        poll_s=POLL_S,
    )

    _selfplay(cluster, "scale", job, "--actors", "1")
    wait_until(lambda: running_with(0, 1), 120, "the fleet to drain to 1 actor", poll_s=POLL_S)

    stopped = json.loads(_selfplay(cluster, "stop", job, timeout=300))
    assert stopped["ray_status"] == "SUCCEEDED", stopped
    logs = _selfplay(cluster, "logs", job)
    summary = json.loads(next(ln for ln in reversed(logs.splitlines()) if ln.startswith("{")))

    stream = summary["stream"]
    assert every_chunk_accounted_for(stream), stream
    assert stream["chunks_consumed"] > 0
    actors = summary["actors"]
    assert len(actors) == 3  # indices 0, 1, 2: every actor that ever ran, drained
    assert any(a["restarted"] for a in actors), actors  # the killed one came back
    assert len({a["node_id"] for a in actors}) == 2, actors  # spread over both nodes
    # Without the killed incarnation's unsent work, every chunk an actor sent is in the
    # stream exactly once: the restarted actor reports only what it sent after the kill.
    assert sum(a["chunks_sent"] for a in actors) <= stream["chunks_added"]
    killed_share = stream["chunks_added"] - sum(a["chunks_sent"] for a in actors)
    assert killed_share >= 0
    checkpoint = tmp_path / "run" / "checkpoints" / "learner.safetensors"
    assert checkpoint.exists()  # the clean stop's final checkpoint
