"""Hindsight Experience Replay: the bit-flipping task, relabelling against a hand-computed
example and its sampling distribution, and DQN + HER learning 10 bits through the real
trajectory stream and weight store (the paper's first experiment, small)."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from actors.goal_rollout import GoalWorker
from core.chunks import TrajectoryChunk
from core.config import parse_config
from envs.goal import goal_task
from envs.goal.bitflip import BitFlipVector, compute_reward
from league.client import LeagueClient
from learner.learner import Learner
from learner.replay import EpisodeStorage, HindsightSampler
from transport.streams import TrajectoryStream
from transport.weights import WeightStore


def test_bit_flipping_steps_rewards_and_restarts() -> None:
    env = BitFlipVector(3, n_bits=4, seed=0)
    assert env.num_actions == 5  # four flips and the no-op
    first = env.reset()
    assert first.observation.shape == first.desired_goal.shape == (3, 4)
    np.testing.assert_array_equal(first.observation, first.achieved_goal)
    # Game 0 flips the bits that differ, then holds with the no-op; the others idle.
    wrong = list(np.flatnonzero(first.observation[0] != first.desired_goal[0]))
    for step in range(4):
        actions = np.array([wrong[step] if step < len(wrong) else 4, 4, 4])
        obs, rewards, terminated, truncated, info = env.step(actions)
        assert not terminated.any()
        assert rewards[0] == (0.0 if step >= len(wrong) - 1 else -1.0)
    assert info["is_success"][0] and truncated.all()  # solved and held to the time limit
    np.testing.assert_array_equal(env.final_obs.observation[0], first.desired_goal[0])
    np.testing.assert_array_equal(env.final_obs.observation[1:], first.observation[1:])
    assert not np.array_equal(obs.desired_goal, first.desired_goal)  # restarted: new goals
    assert compute_reward(np.ones((2, 5, 3)), np.ones((2, 5, 3))).shape == (2, 5)
    with pytest.raises(ValueError, match="outside"):
        env.step(np.array([5, 0, 0]))


def _episode(
    achieved: list[list[float]], desired: list[float], obs_dim: int = 1
) -> TrajectoryChunk:
    t = len(achieved)
    return TrajectoryChunk.of(
        "her", "actor", 0, 0,
        obs=np.arange(t * obs_dim, dtype=np.float32).reshape(t, obs_dim),
        actions=np.arange(t, dtype=np.int64), rewards=np.zeros(t, np.float32),
        dones=np.zeros(t, bool), policy_versions=np.zeros(t, np.int64),
        bootstrap_obs=np.full(obs_dim, 99.0, np.float32),
        desired_goal=np.tile(np.array(desired, np.float32), (t, 1)),
        achieved_goal=np.array(achieved, np.float32),
        is_success=np.zeros(t, bool),
    )  # fmt: skip


def test_relabelling_matches_a_hand_computed_example() -> None:
    storage = EpisodeStorage(4, 3, obs_dim=1, goal_dim=2, action_shape=(), action_dtype=np.int64)
    storage.add(_episode([[1, 0], [1, 1], [0, 1]], desired=[1, 1]))
    sampler = HindsightSampler(storage, compute_reward, "future", k=4)
    out = sampler.transitions(
        episodes=np.array([0, 0, 0, 0]),
        steps=np.array([0, 1, 2, 0]),
        relabel=np.array([False, True, True, True]),
        goal_steps=np.array([2, 2, 2, 0]),
    )
    # Step 0 keeps the real goal [1,1] and reached [1,0]: -1. Step 1 reached [1,1] but its
    # goal became what step 2 reached, [0,1]: -1. Step 2 reached [0,1], its own new goal: 0.
    # Step 0 relabelled with what it reached itself, [1,0]: 0.
    np.testing.assert_array_equal(out.goals, [[1, 1], [0, 1], [0, 1], [1, 0]])
    np.testing.assert_array_equal(out.rewards, [-1.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(out.obs[:, 0], [0, 1, 2, 0])
    # The last step bootstraps from the observation after it; nothing is terminal.
    np.testing.assert_array_equal(out.next_obs[:, 0], [1, 2, 99, 1])
    assert not out.terminal.any()
    np.testing.assert_array_equal(out.actions, [0, 1, 2, 0])


@pytest.mark.parametrize("strategy", ["future", "final", "episode", "none"])
def test_sampling_follows_the_strategy(strategy: str) -> None:
    length = 8
    storage = EpisodeStorage(16, length, 1, 1, (), np.dtype(np.int64))
    for _ in range(16):
        storage.add(_episode([[float(t)] for t in range(length)], desired=[-1.0]))
    sampler = HindsightSampler(storage, compute_reward, strategy, k=4)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    n = 40_000
    batch = sampler.sample(n, rng)
    share = batch.relabelled.mean()
    expected = 0.0 if strategy == "none" else 0.8
    assert abs(share - expected) < 4 * np.sqrt(0.16 / n) + 1e-9
    steps = batch.obs[:, 0].astype(int) % length
    chosen = batch.goals[batch.relabelled, 0].astype(int)
    if strategy == "future":
        assert (chosen >= steps[batch.relabelled]).all()
        # From step 0 every later step is equally likely: 1/8 each.
        from_start = chosen[steps[batch.relabelled] == 0]
        counts = np.bincount(from_start, minlength=length) / len(from_start)
        assert np.abs(counts - 1 / length).max() < 0.03
    elif strategy == "final":
        assert (chosen == length - 1).all()
    elif strategy == "episode":
        counts = np.bincount(chosen, minlength=length) / len(chosen)
        assert np.abs(counts - 1 / length).max() < 0.02
    # A relabelled goal reached by this very step pays 0; every real goal (-1) pays -1.
    assert (batch.rewards[~batch.relabelled] == -1.0).all()
    own = batch.relabelled & (batch.goals[:, 0] == steps)
    assert (batch.rewards[own] == 0.0).all()


def test_dqn_with_her_learns_ten_bits(
    redis_client: redis.Redis, league: LeagueClient, tmp_path
) -> None:
    cfg = parse_config(
        {
            "job": "bitflip10",
            "env": {"name": "envs.goal.bitflip", "kwargs": {"n_bits": 10}},
            "model": {"hidden": [128]},
            "algorithm": {"name": "dqn", "batch_chunks": 8, "learning_starts": 500},
            "actors": {"envs_per_actor": 16, "chunk_length": 10},
            "league": {"eval_fraction": 0.2},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 1_000_000},
        }
    )
    task = goal_task(cfg.env.name)
    assert task is not None
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(cfg, tmp_path, stream, store, league, 10, 11, goal_dim=10)
    learner.start()
    worker = GoalWorker(cfg, "actor-her", store, stream, seed=1, exploration=0.2)
    worker.pool.wait_for_learner(5.0)
    recent: list[tuple[int, int]] = []
    for _ in range(300):
        before = (worker.stats.eval_episodes, worker.stats.eval_successes)
        worker.run(lambda: False, max_steps=50)
        while learner.step(block_ms=0):
            pass
        recent.append(
            (worker.stats.eval_episodes - before[0], worker.stats.eval_successes - before[1])
        )
        episodes, successes = map(sum, zip(*recent[-6:], strict=True))
        if episodes >= 100 and successes >= 0.95 * episodes:
            break
    assert episodes >= 100 and successes >= 0.95 * episodes, (episodes, successes)
    assert learner.counters.chunks_rejected == 0 and learner.counters.updates > 0


def test_a_goal_job_runs_end_to_end_and_evaluates(tmp_path) -> None:
    """`selfplay run` a goal job (embedded Redis, local Ray, learner and goal actor), its
    success rate in status.json, and `selfplay eval --episodes` on its checkpoint."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    overrides = [
        "env.kwargs.n_bits=8",
        "actors.chunk_length=8",
        "algorithm.learning_starts=200",
        "model.hidden=[64]",
        "checkpoints.every_seconds=5",
        "dashboard.enabled=false",
    ]
    sets = [arg for item in overrides for arg in ("--set", item)]
    run_dir = tmp_path / "run"

    def selfplay(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cluster.cli", *args]
        return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)

    ran = selfplay("run", "configs/her_bitflip.yaml", "--out", str(run_dir), "--minutes", "0.5",
                   *sets)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads(ran.stdout)
    assert summary["learner"]["updates"] > 0 and summary["stream"]["chunks_rejected"] == 0
    (actor,) = summary["actors"]
    assert actor["eval_episodes"] > 0 and actor["episodes"]["main"] > 0
    status = json.loads((run_dir / "status.json").read_text())
    assert "eval_success_rate" in status and status["learners"]["main"]["eval_episodes"] > 0
    evaluated = selfplay("eval", str(run_dir), "--episodes", "64", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    result = json.loads(evaluated.stdout)
    assert result["episodes"] == 64 and 0.0 <= result["success_rate"] <= 1.0
    wrong = selfplay("run", "configs/her_bitflip.yaml", "--out", str(tmp_path / "x"),
                     "--set", "actors.chunk_length=16")  # fmt: skip
    assert wrong.returncode == 2 and "actors.chunk_length" in wrong.stderr
