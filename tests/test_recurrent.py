"""Recurrent policies (model.lstm): the actor's state carried step by step exactly as the
learner's unroll computes it, reset at each episode's start; sequences sampled from the
replay with one goal each; the chunk's state at its start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import redis
import torch

from actors.goal_rollout import GoalWorker
from actors.inference import SquashedGaussianPolicy
from cluster.checks import check_job
from core.config import ConfigError, ModelConfig, load_config, parse_config
from core.nets import RecurrentGaussianActor
from envs.bots import Batch
from envs.goal.bitflip import compute_reward
from envs.pettingzoo_adapter import GameSpec
from league.client import LeagueClient
from learner.learner import Learner
from learner.replay import EpisodeStorage, HindsightSampler
from tests.test_her import _episode
from transport.streams import TrajectoryStream
from transport.weights import WeightStore


def _actor() -> RecurrentGaussianActor:
    torch.manual_seed(0)
    return RecurrentGaussianActor(ModelConfig(hidden=(16,), lstm=8), 5, 2)


def test_acting_step_by_step_is_the_learners_unroll() -> None:
    """A hand-made sequence: 3 games, 6 steps, game 1's episode restarting at step 3. The
    greedy actions the actors take, carrying the state from decision to decision and
    zeroing it at the restart, are tanh of the means the learner's unroll computes."""
    net = _actor()
    x = torch.randn(3, 6, 5)
    policy = SquashedGaussianPolicy(net, torch.Generator())
    spec = GameSpec(("agent",), 5, 2, False, False, True)
    rng = np.random.default_rng(0)
    state, acted = None, []
    for t in range(6):
        if t == 3:
            state[1] = 0.0  # game 1 starts a new episode
        batch = Batch(x[:, t].numpy(), None, rng, spec, (), (), greedy=True, state=state)
        decision = policy.act(batch)
        acted.append(decision.actions)
        state = decision.state
        assert state is not None and state.shape == (3, net.state_dim)
    acted_all = np.stack(acted, axis=1)  # [3, 6, 2]
    with torch.no_grad():
        means, _, states = net.unroll(x, torch.zeros(3, net.state_dim))
        tail, _, _ = net.unroll(x[1:2, 3:], torch.zeros(1, net.state_dim))
    expected = torch.tanh(means).numpy()
    expected[1, 3:] = torch.tanh(tail[0]).numpy()
    np.testing.assert_allclose(acted_all, expected, atol=1e-5)
    assert states.shape == (3, 7, net.state_dim) and not states[:, 0].any()
    np.testing.assert_allclose(state[0], states[0, -1].numpy(), atol=1e-5)


def test_sequences_match_a_hand_computed_example() -> None:
    storage = EpisodeStorage(2, 4, obs_dim=1, goal_dim=2, action_shape=(), action_dtype=np.int64)
    storage.add(_episode([[1, 0], [1, 1], [0, 1], [0, 0]], desired=[1, 1]))
    sampler = HindsightSampler(storage, compute_reward, "future", k=4)
    out = sampler.sequences(
        episodes=np.array([0, 0]),
        start=np.array([1, 0]),
        length=2,
        relabel=np.array([False, True]),
        goal_steps=np.array([3, 2]),
    )
    # Sequence 0: steps 1-2 with the real goal [1,1]: step 1 reached it (0), step 2 not.
    # Sequence 1: steps 0-1 with the goal step 2 reached, [0,1]: neither step reached it.
    np.testing.assert_array_equal(out.rewards, [[0.0, -1.0], [-1.0, -1.0]])
    np.testing.assert_array_equal(out.actions, [[1, 2], [0, 1]])
    np.testing.assert_array_equal(out.start, [1, 0])
    assert out.inputs.shape == (2, 5, 3)  # the whole episode, the bootstrap step included
    np.testing.assert_array_equal(out.inputs[0, :, 0], [0, 1, 2, 3, 99])
    np.testing.assert_array_equal(out.inputs[0, :, 1:], [[1, 1]] * 5)  # one goal throughout
    np.testing.assert_array_equal(out.inputs[1, :, 1:], [[0, 1]] * 5)
    assert not out.terminal.any()
    rng = np.random.default_rng(0)
    many = sampler.sample_sequences(20_000, 2, rng)
    assert set(np.unique(many.start)) == {0, 1, 2}  # every start that fits
    assert abs(many.relabelled.mean() - 0.8) < 0.02
    with pytest.raises(ValueError, match="sequences of 5 steps"):
        sampler.sample_sequences(1, 5, rng)


def test_goal_worker_carries_the_state_and_resets_it_per_episode(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = parse_config(
        {
            "job": "point_lstm",
            "env": {"name": "envs.goal.point"},
            "model": {"hidden": [16], "lstm": 8},
            "algorithm": {"name": "sac", "batch_size": 16, "sequence_length": 8},
            "actors": {"envs_per_actor": 3, "chunk_length": 20},
            "league": {"eval_fraction": 0.3},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 1_000_000},
        }
    )
    check_job(cfg)
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    Learner(cfg, tmp_path, stream, store, league, 2, 2, continuous=True, goal_dim=2).start()
    worker = GoalWorker(cfg, "actor-lstm", store, stream, seed=2)
    worker.pool.wait_for_learner(5.0)
    player = worker.lineup.player((worker.pool.lineage, "__learner__"))
    seen: list[tuple[np.ndarray | None, np.ndarray | None]] = []
    act = player.act

    def noting(batch: Batch):  # type: ignore[no-untyped-def]
        decision = act(batch)
        if not batch.greedy:  # the full batch: every game's row
            seen.append((None if batch.state is None else batch.state.copy(), decision.state))
        return decision

    player.act = noting  # type: ignore[method-assign]
    worker.lineup.player = lambda seat: player  # type: ignore[method-assign]
    worker.run(lambda: False, max_steps=60)  # three episodes of 20 steps per game
    assert len(seen) == 60
    for t, (before, _) in enumerate(seen):
        assert before is not None
        if t % 20 == 0:  # every game starts an episode: nothing remembered
            assert not before.any(), t
        else:  # carried from the decision before
            np.testing.assert_array_equal(before, seen[t - 1][1])
            assert before.any()
    worker.flush()
    chunks = stream.read("inspector", 100, 0)
    assert chunks  # each carries the state at its start: an episode's, zeros
    from core.chunks import job_chunk_spec
    from core.codec import decode_chunk
    from core.spaces import PolicyShape

    spec = job_chunk_spec(cfg, PolicyShape(2, 2, True, 2))
    for _, data in chunks:
        chunk = decode_chunk(data, spec, cfg.job)
        assert chunk.recurrent_state is not None and chunk.recurrent_state.shape == (16,)
        assert not chunk.recurrent_state.any()


def test_recurrent_configs_are_checked() -> None:
    base = {"job": "j", "env": {"name": "envs.goal.point"}, "actors": {"chunk_length": 20}}
    with pytest.raises(ConfigError, match="td3 has no recurrent learner"):
        check_job(parse_config({**base, "model": {"lstm": 8}, "algorithm": {"name": "td3"}}))
    with pytest.raises(ConfigError, match="longer than an episode"):
        check_job(
            parse_config(
                {**base, "model": {"lstm": 8}, "algorithm": {"name": "sac", "sequence_length": 32}}
            )
        )
    with pytest.raises(ConfigError, match="must divide batch_size"):
        check_job(
            parse_config(
                {**base, "model": {"lstm": 8}, "algorithm": {"name": "sac", "sequence_length": 12}}
            )
        )
    check_job(load_config("configs/sumo_bug.yaml", ["model.lstm=16"]))  # PPO/V-trace: fine
    with pytest.raises(ConfigError, match="MLP torso"):
        check_job(
            load_config(
                "configs/connect_four.yaml",
                ["model.kind=conv", "model.conv_input=[6, 7, 2]", "model.lstm=16"],
            )
        )


@pytest.mark.parametrize("vector_env", [True, False], ids=["batched", "per-game"])
def test_the_learner_replays_the_actors_recurrent_decisions_exactly(
    vector_env: bool, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Self-play chunks from a recurrent policy: the learner's unroll of each chunk, from
    the state the chunk carries and zeroed after every episode end, gives back every
    log-probability the actors recorded, so states were carried, reset and stored right
    across chunk and episode boundaries (short episodes end inside chunks)."""
    from actors.league_link import LeagueLink
    from actors.policies import PolicyPool
    from actors.vector_rollout import make_rollout_worker
    from core.chunks import job_chunk_spec
    from core.codec import decode_chunk
    from core.config import LeagueSettings
    from core.nets import RecurrentPolicyValueNet
    from envs.pettingzoo_adapter import Game
    from league.server import LeagueServer
    from learner.ppo_vtrace import _logp_values, stack_chunks

    cfg = parse_config(
        {
            "job": f"lstm_selfplay_{vector_env}",
            "env": {
                "name": "envs.sumo.sumo_env",
                "api": "parallel",
                "kwargs": {"bodies": ["bug", "bug"], "max_steps": 13},
            },
            "model": {"hidden": [16], "lstm": 8},
            "algorithm": {"batch_chunks": 4, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 3, "chunk_length": 8, "vector_env": vector_env},
            "league": {"eval_fraction": 0.0, "builtins": ["random"], "builtin_fraction": 0.3},
            "transport": {"max_stream_length": 10_000},
        }
    )
    check_job(cfg)
    server = LeagueServer(tmp_path / "league.db", token="t", settings=LeagueSettings(seed=0))
    server.start()
    try:
        league = LeagueClient(server.address, "t")
        spec = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs).spec
        stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
        store = WeightStore(redis_client, cfg.job)
        learner = Learner(
            cfg, tmp_path, stream, store, league, spec.obs_dim, spec.num_actions, continuous=True
        )
        learner.start()
        pool = PolicyPool(store, "main", cfg.model, spec.obs_dim, spec.num_actions, True)
        pool.wait_for_learner(5.0)
        link = LeagueLink(league, "main", prefetch=cfg.actors.envs_per_actor)
        worker = make_rollout_worker(cfg, "actor-lstm", pool, stream, link, seed=3)
        worker.run(lambda: False, max_steps=120)  # ~9 episodes of 13 steps per game
        link.close()
    finally:
        server.stop(0)
    chunk_spec = job_chunk_spec(cfg, spec.shape)
    chunks = [decode_chunk(d, chunk_spec, cfg.job) for _, d in stream.read("inspector", 10_000, 0)]
    assert len(chunks) >= 8
    assert any(c.dones[:-1].any() for c in chunks)  # episodes end inside chunks
    assert any(c.recurrent_state.any() for c in chunks)  # chunks start mid-episode too
    net = learner.algorithm.net  # type: ignore[attr-defined]
    assert isinstance(net, RecurrentPolicyValueNet)
    with torch.no_grad():
        logp, _, _, _ = _logp_values(net, stack_chunks(chunks, torch.device("cpu")))
    behaviour = np.stack([c.behaviour_logp for c in chunks], axis=1)
    np.testing.assert_allclose(logp.numpy(), behaviour, atol=2e-4)
    if vector_env:  # evaluation carries each agent's state through its game
        from actors.evaluation import choose_actions, evaluate
        from actors.inference import TorchPolicy
        from actors.players import BotPlayer
        from envs.bots import BOTS

        game = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs)
        game.reset(seed=0)
        states: dict[str, np.ndarray] = {}
        policy = TorchPolicy(net, torch.Generator().manual_seed(0))
        rng = np.random.default_rng(0)
        me = game.spec.agents[0]
        choose_actions(game, me, policy, BotPlayer(BOTS.get("charge")), rng, True, states)
        assert set(states) == {me} and states[me].shape == (16,) and states[me].any()
        learner.checkpoint()
        from core.config import dump_config

        (tmp_path / "config.yaml").write_text(dump_config(cfg))
        result = evaluate(tmp_path, cfg, "charge", 4, seed=1)
        assert result.games == 4 and result.wins + result.draws + result.losses == 4
