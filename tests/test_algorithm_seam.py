"""The algorithm seam is real: a toy algorithm defined only in the tests
(tests/toy_reinforce.py, REINFORCE without a baseline) trains connect_four through the
real trajectory stream, weight store and league, and its checkpoint plays `selfplay
eval`, with nothing under learner/ or actors/ knowing it exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import torch
from safetensors import safe_open

from actors.evaluation import evaluate
from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import RolloutWorker
from core.config import ConfigError, parse_config
from envs.pettingzoo_adapter import Game
from league.client import LeagueClient
from learner.learner import Learner
from tests import toy_reinforce
from transport.streams import TrajectoryStream, every_chunk_accounted_for
from transport.weights import WeightStore


def toy_config() -> dict[str, object]:
    return {
        "job": "toy",
        "env": {"name": "pettingzoo.classic.connect_four_v3"},
        "model": {"hidden": [32]},
        "algorithm": {"name": toy_reinforce.NAME, "batch_chunks": 8, "lr": 3e-3},
        "actors": {"envs_per_actor": 8, "chunk_length": 8},
        "league": {"snapshot_every_versions": 3},
        "transport": {"max_stream_length": 10_000, "max_policy_lag": 100},
    }


def test_the_toy_config_is_validated_as_its_own_class() -> None:
    cfg = parse_config(toy_config())
    assert isinstance(cfg.algorithm, toy_reinforce.ReinforceConfig)
    assert parse_config(cfg.model_dump(mode="json")).algorithm == cfg.algorithm
    with pytest.raises(ConfigError, match="algorithm.minibatches: unknown key"):
        parse_config({**toy_config(), "algorithm": {"name": toy_reinforce.NAME, "minibatches": 2}})
    with pytest.raises(ConfigError, match="algorithm.name: unknown algorithm 'nope'"):
        parse_config({**toy_config(), "algorithm": {"name": "nope"}})


def test_a_toy_algorithm_trains_through_the_stream_and_weight_store(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = parse_config(toy_config())
    spec = Game(cfg.env.name).spec
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(cfg, tmp_path, stream, store, league, spec.obs_dim, spec.num_actions)
    learner.start()
    (net,) = learner.algorithm.nets().values()
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    pool = PolicyPool(store, "main", cfg.model, spec.obs_dim, spec.num_actions)
    pool.wait_for_learner(5.0)
    link = LeagueLink(league, "main", prefetch=cfg.actors.envs_per_actor)
    worker = RolloutWorker(cfg, "actor-toy", pool, stream, link, seed=0)
    updates = 0
    for _ in range(40):
        worker.run(lambda: False, max_steps=20)
        while learner.step(block_ms=0):
            updates += 1
        if updates >= 6:
            break
    link.close()
    assert updates >= 6
    # The actors act with the toy's published weights, which changed as it trained.
    worker.maybe_refresh_weights(now=float("inf"))
    assert pool.learner_version == learner.counters.version >= 7
    assert any(not torch.equal(initial[k], v) for k, v in net.state_dict().items())
    for name, tensor in pool.learner.state_dict().items():
        assert torch.equal(tensor, net.state_dict()[name])
    # Snapshots and the stream's accounting work as for any algorithm.
    assert learner.counters.last_snapshot_version >= 3
    learner.checkpoint()
    while learner.step(block_ms=0):
        pass
    assert every_chunk_accounted_for(stream.stats())
    # The checkpoint holds the toy's own names, and eval plays its acting net.
    path = tmp_path / "checkpoints" / "learner.safetensors"
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("policy.") for k in keys) and any(k.startswith("adam.") for k in keys)
    result = evaluate(tmp_path, cfg, "random", games=4)
    assert result.games == 4 and result.policy_version == learner.counters.version
