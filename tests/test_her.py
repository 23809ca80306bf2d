"""Hindsight Experience Replay: the goal tasks (bit flipping, the point, the Fetch robots),
relabelling against a hand-computed example and its sampling distribution, exploration
per actor, and DQN, SAC and TD3 learning through the real trajectory stream and weight
store with the replay ratio held; a goal job end to end through `selfplay run` and
`selfplay eval`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis

from actors.goal_rollout import GoalWorker
from core.chunks import TrajectoryChunk
from core.config import JobConfig, parse_config
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


def train_until_success(
    cfg: JobConfig,
    redis_client: redis.Redis,
    league: LeagueClient,
    run_dir: Path,
    rounds: int = 300,
    steps_per_round: int = 50,
) -> tuple[int, int]:
    """Trains `cfg`'s goal job (worker and learner in turns) until 95% of the last 100 or
    so greedy evaluation episodes succeed, or `rounds` rounds; returns those episodes
    and successes."""
    task = goal_task(cfg.env.name)
    assert task is not None
    probe = task.make(1, seed=0, **dict(cfg.env.kwargs))
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(
        cfg, run_dir, stream, store, league, probe.obs_dim, probe.num_actions,
        continuous=probe.continuous, goal_dim=probe.goal_dim,
    )  # fmt: skip
    learner.start()
    exploration = cfg.algorithm.actor_exploration(0, 1)
    worker = GoalWorker(cfg, "actor-her", store, stream, seed=1, exploration=exploration)
    worker.pool.wait_for_learner(5.0)
    recent: list[tuple[int, int]] = []
    for _ in range(rounds):
        before = (worker.stats.eval_episodes, worker.stats.eval_successes)
        worker.run(lambda: False, max_steps=steps_per_round)
        while learner.step(block_ms=0):
            pass
        recent.append(
            (worker.stats.eval_episodes - before[0], worker.stats.eval_successes - before[1])
        )
        episodes = successes = 0
        for round_episodes, round_successes in reversed(recent):
            episodes, successes = episodes + round_episodes, successes + round_successes
            if episodes >= 100:
                break
        if episodes >= 100 and successes >= 0.95 * episodes:
            break
    counters, alg = learner.counters, cfg.algorithm
    assert counters.chunks_rejected == 0 and counters.updates > 0
    # The replay ratio held: batches x batch size = ratio x env steps stored since learning
    # started (the first learning update may have brought up to one call's steps before).
    assert counters.gradient_steps == learner.algorithm.replay.gradient_steps  # type: ignore[attr-defined]
    one_call = alg.batch_chunks * cfg.actors.chunk_length
    low = alg.replay_ratio * (counters.steps_trained - alg.learning_starts - one_call)
    high = alg.replay_ratio * counters.steps_trained + alg.batch_size
    assert low <= counters.gradient_steps * alg.batch_size <= high
    return episodes, successes


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
    episodes, successes = train_until_success(cfg, redis_client, league, tmp_path)
    assert episodes >= 100 and successes >= 0.95 * episodes, (episodes, successes)


@pytest.mark.parametrize(
    ("algorithm", "lstm"), [("sac", 0), ("td3", 0), ("sac", 32)], ids=["sac", "td3", "sac-lstm"]
)
def test_continuous_learners_with_her_reach_points(
    algorithm: str, lstm: int, redis_client: redis.Redis, league: LeagueClient, tmp_path
) -> None:
    """SAC and TD3 through the same stream, replay and normaliser as on Fetch, on the
    point task (a random policy: ~1% success); SAC with a recurrent actor too (sequences
    of 8 steps, 16 per batch, the state carried by the actors)."""
    sequences = {"sequence_length": 8} if lstm else {}
    cfg = parse_config(
        {
            "job": f"point_{algorithm}",
            "env": {"name": "envs.goal.point"},
            "model": {"hidden": [64, 64], "lstm": lstm},
            "algorithm": {
                "name": algorithm, "batch_chunks": 8, "batch_size": 128,
                "replay_ratio": 64, "learning_starts": 400, **sequences,
            },
            "actors": {"envs_per_actor": 8, "chunk_length": 20},
            "league": {"eval_fraction": 0.5},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 1_000_000},
        }
    )  # fmt: skip
    episodes, successes = train_until_success(cfg, redis_client, league, tmp_path, rounds=100)
    assert episodes >= 100 and successes >= 0.95 * episodes, (episodes, successes)


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
    # The last status sample may come before the actor's last evaluation episodes.
    assert "eval_success_rate" in status
    assert 0 <= status["learners"]["main"]["eval_episodes"] <= actor["eval_episodes"]
    # The league recorded every evaluation episode (the dashboard's success curve).
    from league.store import LeagueStore

    store = LeagueStore(run_dir / "league.db", readonly=True)
    recorded = store.evaluations()
    store.close()
    assert len(recorded) == actor["eval_episodes"]
    assert {e.player for e in recorded} == {"main"} and recorded[-1].steps_trained > 0
    evaluated = selfplay("eval", str(run_dir), "--episodes", "64", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    result = json.loads(evaluated.stdout)
    assert result["episodes"] == 64 and 0.0 <= result["success_rate"] <= 1.0
    wrong = selfplay("run", "configs/her_bitflip.yaml", "--out", str(tmp_path / "x"),
                     "--set", "actors.chunk_length=16")  # fmt: skip
    assert wrong.returncode == 2 and "actors.chunk_length" in wrong.stderr


@pytest.mark.parametrize("task", ["push", "pick_and_place", "slide"])
def test_every_fetch_task_resets_and_steps(task: str) -> None:
    from envs.goal.fetch import FetchVector

    env = FetchVector(2, task=task, seed=0)
    obs = env.reset()
    assert (env.obs_dim, env.goal_dim, env.num_actions) == (25, 3, 4)
    assert obs.observation.shape == (2, 25) and np.isfinite(obs.observation).all()
    obs, rewards, terminated, truncated, info = env.step(np.ones((2, 4), np.float32))
    assert rewards.shape == (2,) and set(rewards) <= {0.0, -1.0} and not truncated.any()
    assert info["is_success"].dtype == bool
    env.close()


def test_fetch_tasks_step_and_score_like_gymnasium_robotics() -> None:
    """The Fetch wrapper: dict observations as arrays, 50-step episodes ended by the time
    limit (then restarted), and a pure reward equal to the environment's own."""
    import gymnasium
    import gymnasium_robotics

    from envs.goal.fetch import FetchVector
    from envs.goal.fetch import compute_reward as fetch_reward

    env = FetchVector(2, task="reach", seed=3)
    assert (env.obs_dim, env.goal_dim, env.num_actions, env.max_steps) == (10, 3, 4, 50)
    first = env.reset()
    assert first.observation.shape == (2, 10) and first.desired_goal.shape == (2, 3)
    for step in range(50):
        obs, rewards, terminated, truncated, info = env.step(np.zeros((2, 4), np.float32))
        assert not terminated.any() and truncated.all() == (step == 49)
    # Restarted with new goals; the final observation is the one before the restart.
    assert not np.allclose(obs.desired_goal, first.desired_goal)
    np.testing.assert_allclose(env.final_obs.desired_goal, first.desired_goal)
    np.testing.assert_array_equal(rewards, fetch_reward(env.final_obs.achieved_goal,
                                                        env.final_obs.desired_goal))  # fmt: skip
    gymnasium.register_envs(gymnasium_robotics)
    reference = gymnasium.make("FetchPush-v4").unwrapped
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.05, (64, 3)), rng.normal(0, 0.05, (64, 3))
    np.testing.assert_array_equal(fetch_reward(a, b), reference.compute_reward(a, b, None))
    env.close()


def test_input_normaliser_and_squashed_gaussian() -> None:
    import torch

    from core.config import ModelConfig
    from core.nets import GaussianActor, InputNormalizer

    norm = InputNormalizer(3)
    rng = np.random.default_rng(1)
    parts = [rng.normal(2.0, 3.0, (n, 3)).astype(np.float32) for n in (5, 40, 300)]
    for part in parts:
        norm.update(torch.from_numpy(part))
    both = np.concatenate(parts)
    np.testing.assert_allclose(norm.mean.numpy(), both.mean(0), rtol=1e-4)
    np.testing.assert_allclose(norm.var.numpy(), both.var(0), rtol=1e-3)
    out = norm(torch.from_numpy(both)).numpy()
    assert np.abs(out).max() <= 5.0 and abs(out.mean()) < 0.05
    torch.manual_seed(0)
    actor = GaussianActor(ModelConfig(hidden=(16,)), 3, 2)
    x = torch.randn(1000, 3)
    action, logp = actor.sample(x)
    assert action.abs().max() < 1.0
    mean, log_std = actor(x)
    base = torch.distributions.Normal(mean, log_std.exp())
    pre = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
    reference = (base.log_prob(pre) - torch.log1p(-action.pow(2) + 1e-12)).sum(-1)
    np.testing.assert_allclose(logp.detach().numpy(), reference.detach().numpy(), atol=2e-2)


def test_each_actor_explores_by_its_rung_of_the_ladder() -> None:
    """Exploration settings per actor (Ape-X: base^(1 + ladder * i / (N - 1))), and the
    continuous players using them: random actions at the configured rate, none when
    greedy."""
    import torch

    from actors.inference import NoisyDeterministicPolicy
    from actors.players import Batch
    from core.config import ModelConfig
    from core.nets import DeterministicActor
    from envs.pettingzoo_adapter import GameSpec

    ladder = {"name": "dqn", "epsilon": 0.4, "epsilon_ladder": 7}
    dqn = parse_config({"job": "j", "env": {"name": "envs.goal.bitflip"}, "algorithm": ladder})
    rungs = [dqn.algorithm.actor_exploration(i, 5)["epsilon"] for i in range(6)]
    np.testing.assert_allclose(rungs[:5], [0.4 ** (1 + 7 * i / 4) for i in range(5)])
    assert rungs[5] == rungs[4]  # an actor added by scaling takes the ladder's end
    td3 = parse_config({"job": "j", "env": {"name": "envs.goal.point"},
                        "algorithm": {"name": "td3", "random_action_probability": 0.5,
                                      "exploration_ladder": 2, "action_noise": 0.1}})  # fmt: skip
    assert td3.algorithm.actor_exploration(0, 3) == {"random_probability": 0.5, "noise": 0.1}
    assert td3.algorithm.actor_exploration(2, 3)["random_probability"] == 0.5**3
    sac = parse_config(
        {"job": "j", "env": {"name": "envs.goal.point"}, "algorithm": {"name": "sac"}}
    )
    assert sac.algorithm.actor_exploration(0, 1) == {"random_probability": 0.3}

    torch.manual_seed(0)
    net = DeterministicActor(ModelConfig(hidden=(8,)), 4, 2).eval()
    spec = GameSpec(("agent",), 4, 2, False, False, True)
    obs = np.zeros((4000, 4), np.float32)
    policy = NoisyDeterministicPolicy(net, torch.Generator(), random_probability=0.25, noise=0.0)
    greedy = policy.act(Batch(obs, None, np.random.default_rng(0), spec, (), (), greedy=True))
    played = policy.act(Batch(obs, None, np.random.default_rng(0), spec, (), ())).actions
    changed = (played != greedy.actions).any(axis=1).mean()
    assert 0.22 < changed < 0.28 and np.abs(played).max() <= 1.0
