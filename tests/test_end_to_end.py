"""The whole product as a user runs it: `selfplay run` (embedded Redis, local Ray, league,
learner, actor), Ctrl-C, `--resume`, `selfplay eval --json`, `selfplay league table`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from league.store import LeagueStore
from tests.waiting import wait_until
from transport.streams import every_chunk_accounted_for

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "connect_four.yaml"
SMALL = [
    "--set",
    "model.hidden=[64, 64]",
    "--set",
    "actors.envs_per_actor=16",
    "--set",
    "actors.chunk_length=16",
    "--set",
    "algorithm.batch_chunks=16",
    "--set",
    "league.snapshot_every_versions=3",
    "--set",
    "checkpoints.every_seconds=5",
]


def selfplay(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )  # type: ignore[call-overload]


def test_run_interrupt_resume_eval_table(tmp_path: Path) -> None:
    run_dir = tmp_path / "c4"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.cli", "run", str(CONFIG), "--out", str(run_dir), *SMALL],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # Two snapshots mean the learner has trained and published several versions.
        wait_until(
            lambda: len(list((run_dir / "snapshots").glob("*.safetensors"))) >= 2,
            240,
            "two snapshots",
            proc,
        )
        # A second job on a dir in use must refuse (shared league db, AOF, checkpoints).
        clash = selfplay("run", str(CONFIG), "--out", str(run_dir), "--resume", *SMALL)
        assert clash.returncode == 2, clash.stderr[-2000:]
        assert f"is in use by another job (pid {proc.pid})" in clash.stderr
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    first = json.loads(out)
    assert first["learner"]["version"] >= 6
    # The actors tallied their finished training episodes (returns: connect_four's +-1, 0).
    tallies = [(a["episodes"]["main"], a["return_sum"]["main"]) for a in first["actors"]]
    assert sum(n for n, _ in tallies) > 0
    assert all(abs(total) <= n for n, total in tallies)
    assert every_chunk_accounted_for(first["stream"])
    assert (run_dir / "checkpoints" / "learner.safetensors").exists()
    players_before = {p.id for p in LeagueStore(run_dir / "league.db", readonly=True).players()}
    assert {"random", "main", "main@v3", "main@v6"} <= players_before

    # A second run into the same dir without --resume must refuse, not overwrite.
    refused = selfplay("run", str(CONFIG), "--out", str(run_dir), *SMALL)
    assert refused.returncode == 2 and "--resume" in refused.stderr

    resumed = selfplay(
        "run", str(CONFIG), "--out", str(run_dir), "--resume", "--minutes", "0.5", *SMALL
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    second = json.loads(resumed.stdout)
    assert second["learner"]["version"] > first["learner"]["version"]
    assert second["learner"]["steps_trained"] > first["learner"]["steps_trained"]
    # Same Redis (AOF) and league: counters continue, every chunk is accounted for.
    assert second["stream"]["chunks_added"] > first["stream"]["chunks_added"]
    assert every_chunk_accounted_for(second["stream"])
    players_after = {p.id for p in LeagueStore(run_dir / "league.db", readonly=True).players()}
    assert players_before <= players_after

    evaluated = selfplay("eval", str(run_dir), "--opponent", "random", "--games", "20", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["games"] == 20
    assert abs(result["win_rate"] + result["draw_rate"] + result["loss_rate"] - 1.0) < 1e-9
    assert result["policy_version"] == second["learner"]["version"]

    vs_snapshot = selfplay(
        "eval", str(run_dir), "--opponent", "snapshot:main@v3", "--games", "4", "--json"
    )
    assert vs_snapshot.returncode == 0, vs_snapshot.stderr
    missing = selfplay("eval", str(run_dir), "--opponent", "snapshot:main@v999", "--games", "2")
    assert missing.returncode == 2 and "no snapshot" in missing.stderr

    table = selfplay("league", "table", "--run", str(run_dir), "--json")
    assert table.returncode == 0, table.stderr
    rows = {r["player"]: r for r in json.loads(table.stdout)["players"]}
    assert rows["random"]["elo"] == 0.0
    assert any(r["rated"] for pid, r in rows.items() if pid.startswith("main@v"))


def test_bad_config_is_one_line_error(tmp_path: Path) -> None:
    bad = selfplay("run", str(CONFIG), "--out", str(tmp_path / "x"), "--set", "actors.bogus=1")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [f"error: {CONFIG}: actors.bogus: unknown key"]


def test_unreachable_redis_is_one_line_error(tmp_path: Path) -> None:
    bad = selfplay(
        "run", str(CONFIG), "--out", str(tmp_path / "x"), "--redis-url", "redis://127.0.0.1:1/0"
    )
    assert bad.returncode == 2
    assert "cannot reach Redis at 127.0.0.1:1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_team_job_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """simple_tag from the CLI: one learner and stream per team. Started the way a shell
    starts a background job (SIGINT ignored) and stopped with SIGTERM, as `kill` or a
    scheduler would: still a clean stop with every team's accounting balanced."""
    run_dir = tmp_path / "tag"
    config = ROOT / "configs" / "simple_tag.yaml"
    small = ["--set", "actors.envs_per_actor=8", "--set", "algorithm.batch_chunks=8"]
    small += ["--set", "league.snapshot_every_versions=2", "--set", "checkpoints.every_seconds=5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.cli", "run", str(config), "--out", str(run_dir), *small],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        snapshots = run_dir / "snapshots"
        wait_until(
            lambda: len(list(snapshots.glob("prey@v*.safetensors"))) >= 1,
            240,
            "a prey snapshot",
            proc,
        )
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert set(summary["learner"]) == set(summary["stream"]) == {"predator", "prey"}
    for team in ("predator", "prey"):
        assert summary["learner"][team]["version"] >= 2
        assert every_chunk_accounted_for(summary["stream"][team]), summary["stream"][team]
        assert (run_dir / "checkpoints" / f"learner-{team}.safetensors").exists()
    evaluated = selfplay(
        "eval", str(run_dir), "--team", "predator", "--opponent", "snapshot:prey@v2", "--games",
        "4", "--json",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    predator = summary["learner"]["predator"]
    assert json.loads(evaluated.stdout)["policy_version"] == predator["version"]
