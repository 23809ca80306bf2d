"""The batched rollout worker (actors/vector_rollout.py) over a real Redis, league and
learner: its chunks replay bit for bit on a fresh SumoVector, every game is reported
once, and jobs pick it only where it applies."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import redis

from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import RolloutWorker
from actors.vector_rollout import VectorRolloutWorker, make_rollout_worker, vector_factory
from cluster.codec import ChunkSpec, TrajectoryChunk, decode_chunk
from cluster.config import JobConfig, parse_config
from cluster.streams import TrajectoryStream
from cluster.weights import WeightStore
from envs.pettingzoo_adapter import Game
from envs.sumo.vector import SumoVector
from league.client import LeagueClient
from league.server import LeagueServer, LeagueSettings
from league.store import LeagueStore
from learner.learner import Learner

TOKEN = "test-token"
ENV_KWARGS = {"bodies": ["disc", "disc"], "max_steps": 30, "shaping_steps": 500}


def sumo_config(**league: object) -> JobConfig:
    return parse_config(
        {
            "job": "vectest",
            "env": {"name": "envs.sumo.sumo_env", "api": "parallel", "kwargs": ENV_KWARGS},
            "model": {"hidden": [16]},
            "algorithm": {"batch_chunks": 4, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 5, "chunk_length": 8},
            "league": {"eval_fraction": 0.0, **league},
            "transport": {"max_stream_length": 10_000},
        }
    )


def _worker(
    cfg: JobConfig, client: redis.Redis, run_dir: Path, settings: LeagueSettings
) -> tuple[RolloutWorker, TrajectoryStream, LeagueServer]:
    server = LeagueServer(run_dir / "league.db", token=TOKEN, settings=settings)
    server.start()
    league = LeagueClient(server.address, TOKEN)
    spec = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs).spec
    stream = TrajectoryStream(client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(client, cfg.job)
    learner = Learner(
        cfg, run_dir, stream, store, league, spec.obs_dim, spec.num_actions, continuous=True
    )
    learner.start()  # publishes version 0, registers the learner with the league
    pool = PolicyPool(store, "main", cfg.model, spec.obs_dim, spec.num_actions, True)
    pool.wait_for_learner(5.0)
    link = LeagueLink(league, "main", prefetch=cfg.actors.envs_per_actor)
    worker = make_rollout_worker(cfg, "actor-vec", pool, stream, link, seed=7)
    return worker, stream, server


def _chunks(stream: TrajectoryStream, obs_dim: int) -> dict[int, list[TrajectoryChunk]]:
    spec = ChunkSpec(obs_dim=obs_dim, chunk_length=8, action_dim=2)
    by_track: dict[int, list[TrajectoryChunk]] = defaultdict(list)
    for _, data in stream.read("inspector", count=100_000, block_ms=0):
        chunk = decode_chunk(data, spec, job="vectest")
        by_track[chunk.env_index].append(chunk)
    for chunks in by_track.values():
        chunks.sort(key=lambda c: c.sequence)
        assert [c.sequence for c in chunks] == list(range(len(chunks)))
    return by_track


def test_self_play_chunks_replay_exactly_on_a_fresh_vector(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Pure self-play: every seat's decisions are training data, so the chunks hold every
    action. Replaying them on a SumoVector with the worker's seed must reproduce each
    chunk's observations, rewards and done flags exactly, across episode ends."""
    cfg = sumo_config(self_play_fraction=1.0)
    worker, stream, server = _worker(
        cfg, redis_client, tmp_path, LeagueSettings(self_play_fraction=1.0, seed=0)
    )
    try:
        assert isinstance(worker, VectorRolloutWorker)
        worker.run(lambda: False, max_steps=100)  # 3+ episodes of 30 steps per game
        worker.league.close()
    finally:
        server.stop(0)
    n = cfg.actors.envs_per_actor
    by_track = _chunks(stream, worker.vec.obs_dim)
    assert sorted(by_track) == list(range(2 * n))  # env_index = 2 game + seat
    steps = min(8 * len(chunks) for chunks in by_track.values())
    assert steps >= 64

    def column(field: str, track: int) -> np.ndarray:
        return np.concatenate([getattr(c, field) for c in by_track[track]])

    replay = SumoVector(n, seed=worker.vector_seed, autoreset=True, **ENV_KWARGS)  # type: ignore[arg-type]
    obs = replay.reset()
    ends = 0
    for t in range(steps):
        actions = np.zeros((n, 2, 2), np.float32)
        for g in range(n):
            for s in range(2):
                track = 2 * g + s
                np.testing.assert_array_equal(obs[g, s], column("obs", track)[t])
                actions[g, s] = column("actions", track)[t]
        obs, rewards, terminated, truncated = replay.step(actions)
        done = terminated | truncated
        ends += int(done.sum())
        for g in range(n):
            for s in range(2):
                track = 2 * g + s
                assert column("dones", track)[t] == done[g]
                assert column("rewards", track)[t] == np.float32(rewards[g, s])
    assert ends >= 2 * n
    # Every decision became training data; every finished game was reported once.
    assert worker.stats.learner_steps >= 2 * n * 99
    store = LeagueStore(tmp_path / "league.db", readonly=True)
    assert store.result_count() == worker.stats.games > 0


def test_builtin_games_are_reported_once_and_only_the_learner_is_trained(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    cfg = sumo_config(self_play_fraction=0.0, builtins=["random", "charge", "still"])
    settings = LeagueSettings(
        self_play_fraction=0.0, builtins=("random", "charge", "still"), seed=1
    )
    worker, stream, server = _worker(cfg, redis_client, tmp_path, settings)
    try:
        worker.run(lambda: False, max_steps=120)
        worker.league.close()
        store = LeagueStore(tmp_path / "league.db", readonly=True)
        results = store.results()
    finally:
        server.stop(0)
    assert len(results) == worker.stats.games == worker.stats.results.acked > 0
    assert {r.player_b for r in results} == {"random", "charge", "still"}
    assert all(r.player_a == "main" for r in results)
    # One seat per game is the learner's: half the env steps are training data (minus
    # the decisions still open when the run stopped).
    assert worker.stats.env_steps == 2 * 5 * 120
    assert 5 * 119 <= worker.stats.learner_steps <= 5 * 120
    by_track = _chunks(stream, worker.vec.obs_dim)
    sent = sum(len(c) for c in by_track.values())
    assert sent == worker.stats.chunks_sent


@pytest.mark.parametrize(
    ("env", "vector_env", "expected"),
    [
        ({"name": "envs.sumo.sumo_env", "api": "parallel"}, True, VectorRolloutWorker),
        ({"name": "envs.sumo.sumo_env", "api": "parallel"}, False, RolloutWorker),
        ({"name": "envs.sumo.sumo_env", "api": "aec"}, True, RolloutWorker),
        ({"name": "pettingzoo.classic.connect_four_v3"}, True, RolloutWorker),
    ],
)
def test_the_batched_worker_is_chosen_where_it_applies(
    env: dict[str, str], vector_env: bool, expected: type
) -> None:
    cfg = parse_config({"job": "pick", "env": env, "actors": {"vector_env": vector_env}})
    chosen = VectorRolloutWorker if vector_factory(cfg) is not None else RolloutWorker
    assert chosen is expected


def test_chunk_tracks_are_taken_stalest_first(redis_client: redis.Redis, tmp_path: Path) -> None:
    """After a mirror game leaves the second track part-filled, the next episode that
    trains one agent continues that track, not always the first; and when the agent's
    chunk goes out it moves on to the other part-filled track no agent holds. Else those
    chunks wait for the next mirror game and go stale (dropped for policy lag)."""
    cfg = sumo_config(self_play_fraction=0.0, builtins=["random"])
    settings = LeagueSettings(self_play_fraction=0.0, builtins=("random",), seed=3)
    worker, _, server = _worker(cfg, redis_client, tmp_path, settings)
    try:
        slot = worker.slots[0]
        zeros = np.zeros(worker.vec.obs_dim, np.float32)

        def fill(key: tuple[str, int], steps: int, version: int) -> None:
            for _ in range(steps):
                slot.tracks[key].chunks.add(zeros, None, np.zeros(2), 0.0, 0.0, version, 0, True)

        fill(("main", 1), 3, version=3)
        fill(("main", 0), 3, version=5)
        worker._start_episode(slot)
        (trained,) = slot.trained
        assert slot.track_of[trained] == ("main", 1)
        # Its chunk fills and goes out: the agent moves on to the other part-filled track.
        fill(("main", 1), cfg.actors.chunk_length - 3, version=6)
        slot.tracks[("main", 1)].chunks.take(zeros)
        worker._move_to_idle_track(slot, trained)
        assert slot.track_of[trained] == ("main", 0)
        # Both empty now but one: the part-filled one comes first, empty ones after.
        fill(("main", 0), cfg.actors.chunk_length - 3, version=7)
        slot.tracks[("main", 0)].chunks.take(zeros)
        worker._move_to_idle_track(slot, trained)
        assert slot.track_of[trained] == ("main", 0)  # nothing part-filled to move to
        fill(("main", 0), 2, version=8)
        worker._start_episode(slot)
        assert slot.track_of[next(iter(slot.trained))] == ("main", 0)
        worker.league.close()
    finally:
        server.stop(0)
