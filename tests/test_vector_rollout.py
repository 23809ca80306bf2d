"""The batched rollout worker (actors/vector_rollout.py) over a real Redis, league and
learner: its chunks replay bit for bit on a fresh SumoVector, every game is reported
once, and jobs pick it only where it applies."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import GameStepper, RolloutWorker
from actors.vector_rollout import VectorStepper, make_rollout_worker, vector_factory
from core.chunks import ChunkSpec, TrajectoryChunk
from core.codec import decode_chunk
from core.config import JobConfig, LeagueSettings, PPOVTraceConfig, parse_config
from envs.pettingzoo_adapter import Game
from envs.sumo.vector import SumoVector
from league.client import LeagueClient
from league.server import LeagueServer
from league.store import LeagueStore
from learner.learner import Learner
from transport.streams import TrajectoryStream
from transport.weights import WeightStore

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
    spec = ChunkSpec(obs_dim, 8, action_dim=2, optional=PPOVTraceConfig.chunk_fields)
    by_track: dict[int, list[TrajectoryChunk]] = defaultdict(list)
    for _, data in stream.read("inspector", count=100_000, block_ms=0):
        chunk = decode_chunk(data, spec, job="vectest")
        by_track[chunk.env_index].append(chunk)
    for chunks in by_track.values():
        chunks.sort(key=lambda c: c.sequence)
        assert [c.sequence for c in chunks] == list(range(len(chunks)))
    return by_track


@pytest.mark.parametrize("mixed", [False, True], ids=["self-play", "with-builtins"])
def test_chunks_replay_exactly_on_a_fresh_vector(
    redis_client: redis.Redis, tmp_path: Path, mixed: bool
) -> None:
    """Replaying the actions the worker sent to its SumoVector on a fresh one with the same
    seed must reproduce, row for row, every learner decision in the chunks: observation,
    action, reward and done flag, across episode ends. The test notes where each (game,
    seat)'s decisions went (track, chunk sequence, row): tracks move between seats and
    games (TrackPool). Pure self-play trains every seat; with builtins in half the games,
    games train one agent or two, so part-filled tracks change hands."""
    fraction = 0.5 if mixed else 1.0
    builtins = {"builtins": ["random", "still"], "builtin_fraction": 0.5} if mixed else {}
    cfg = sumo_config(self_play_fraction=fraction, **builtins)
    settings = LeagueSettings(
        self_play_fraction=fraction,
        builtins=tuple(cfg.league.builtins),
        builtin_fraction=cfg.league.builtin_fraction,
        seed=0,
    )
    worker, stream, server = _worker(cfg, redis_client, tmp_path, settings)
    stepper = worker.stepper
    assert isinstance(stepper, VectorStepper)
    sent_actions: list[np.ndarray] = []
    decided: dict[tuple[int, int], list[int]] = defaultdict(list)  # steps it decided at
    went: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    vec_step, decide, close = stepper.vec.step, stepper._decide, stepper._close

    def noting_step(actions: np.ndarray) -> Any:
        sent_actions.append(actions.copy())
        return vec_step(actions)

    def noting_decide(
        episodes: Any, lineage: str, games: np.ndarray, seats: np.ndarray, *rest: Any
    ) -> None:
        for g, s in zip(games.tolist(), seats.tolist(), strict=True):
            decided[(g, s)].append(len(sent_actions))
        decide(episodes, lineage, games, seats, *rest)

    def noting_close(episodes: Any, agent: str, g: int, s: int, next_obs: Any) -> None:
        chunks = episodes.slots[g].track_of[agent]
        went[(g, s)].append((chunks.env_index, chunks.sequence, chunks._n))
        close(episodes, agent, g, s, next_obs)

    stepper.vec.step = noting_step  # type: ignore[method-assign]
    stepper._decide = noting_decide  # type: ignore[method-assign]
    stepper._close = noting_close  # type: ignore[method-assign]
    try:
        worker.run(lambda: False, max_steps=100)  # 3+ episodes of 30 steps per game
        worker.league.close()
    finally:
        server.stop(0)
    n = cfg.actors.envs_per_actor
    by_track = _chunks(stream, worker.stepper.vec.obs_dim)
    # (game, seat, step) -> the chunk and row holding that decision, where it went out.
    rows: dict[tuple[int, int, int], tuple[TrajectoryChunk, int]] = {}
    for key, steps in decided.items():
        for t, (track, sequence, i) in zip(steps, went[key], strict=False):
            if sequence < len(by_track.get(track, [])):
                rows[(*key, t)] = (by_track[track][sequence], i)
    assert len(rows) >= 0.8 * sum(8 * len(c) for c in by_track.values())  # ~ all rows sent
    if mixed:
        assert any(len({track for track, _, _ in where}) > 1 for where in went.values())
        assert len(rows) < 2 * n * len(sent_actions) * 0.9  # the bot's seats are not in it

    replay = SumoVector(n, seed=stepper.vector_seed, autoreset=True, **ENV_KWARGS)  # type: ignore[arg-type]
    obs = replay.reset()
    ends = checked = 0
    for t, actions in enumerate(sent_actions):
        mine = [(g, s, *rows[(g, s, t)]) for g in range(n) for s in range(2) if (g, s, t) in rows]
        for g, s, chunk, i in mine:
            np.testing.assert_array_equal(obs[g, s], chunk.obs[i])
            np.testing.assert_array_equal(actions[g, s], chunk.actions[i])
        obs, rewards, terminated, truncated = replay.step(actions)
        done = terminated | truncated
        ends += int(done.sum())
        for g, s, chunk, i in mine:
            assert chunk.dones[i] == done[g]
            assert chunk.rewards[i] == np.float32(rewards[g, s])
        checked += len(mine)
    assert checked == len(rows) > 0
    # Within a chunk, a row that did not end its episode is followed by the same seat's
    # next decision (or, in the last row, by the bootstrap observation): what GAE needs.
    where = {
        (track, seq, i): (g, s, k)
        for (g, s), w in went.items()
        for k, (track, seq, i) in enumerate(w)
    }
    for track, chunks in by_track.items():
        for chunk in chunks:
            for i in np.flatnonzero(~chunk.dones):
                g, s, k = where[(track, chunk.sequence, int(i))]
                if i + 1 < len(chunk.dones):
                    assert where[(track, chunk.sequence, int(i) + 1)] == (g, s, k + 1)
                elif k + 1 < len(went[(g, s)]):
                    nxt_track, nxt_seq, nxt_i = went[(g, s)][k + 1]
                    if nxt_seq < len(by_track.get(nxt_track, [])):
                        nxt = by_track[nxt_track][nxt_seq]
                        np.testing.assert_array_equal(chunk.bootstrap_obs, nxt.obs[nxt_i])
    if mixed:
        return
    assert ends >= 2 * n
    # Every decision became training data; every finished game was reported once.
    assert worker.stats.learner_steps >= 2 * n * 99
    # Both seats trained: two episodes per game, and a game's decisions are its steps.
    assert worker.stats.episodes == {"main": 2 * worker.stats.games}
    finished = worker.stats.decision_sum["main"]
    assert worker.stats.games <= finished <= worker.stats.learner_steps
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
    assert worker.stats.episodes == {"main": worker.stats.games}
    assert np.isfinite(worker.stats.return_sum["main"])
    assert {r.player_b for r in results} == {"random", "charge", "still"}
    assert all(r.player_a == "main" for r in results)
    # One seat per game is the learner's: half the env steps are training data (minus
    # the decisions still open when the run stopped).
    assert worker.stats.env_steps == 2 * 5 * 120
    assert 5 * 119 <= worker.stats.learner_steps <= 5 * 120
    by_track = _chunks(stream, worker.stepper.vec.obs_dim)
    sent = sum(len(c) for c in by_track.values())
    assert sent == worker.stats.chunks_sent


@pytest.mark.parametrize(
    ("env", "vector_env", "expected"),
    [
        ({"name": "envs.sumo.sumo_env", "api": "parallel"}, True, VectorStepper),
        ({"name": "envs.sumo.sumo_env", "api": "parallel"}, False, GameStepper),
        ({"name": "envs.sumo.sumo_env", "api": "aec"}, True, GameStepper),
        ({"name": "pettingzoo.classic.connect_four_v3"}, True, GameStepper),
    ],
)
def test_the_batched_worker_is_chosen_where_it_applies(
    env: dict[str, str], vector_env: bool, expected: type
) -> None:
    cfg = parse_config({"job": "pick", "env": env, "actors": {"vector_env": vector_env}})
    chosen = VectorStepper if vector_factory(cfg) is not None else GameStepper
    assert chosen is expected
