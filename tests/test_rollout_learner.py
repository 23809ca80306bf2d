"""Actor -> Redis -> learner -> weights -> actor, in one process (no Ray), over a real
Redis and a real league gRPC server."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import redis

from actors.evaluation import evaluate
from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import RolloutWorker
from core.chunks import job_chunk_spec
from core.codec import decode_chunk
from core.config import JobConfig, LeagueSettings, parse_config
from envs.pettingzoo_adapter import Game
from league.client import LeagueClient
from league.server import LeagueServer
from league.store import LeagueStore
from learner.learner import Learner
from transport.streams import TrajectoryStream, every_chunk_accounted_for
from transport.weights import WeightStore

TOKEN = "test-token"


def small_config(**league: float) -> JobConfig:
    return parse_config(
        {
            "job": "c4test",
            "env": {"name": "pettingzoo.classic.connect_four_v3"},
            "model": {"hidden": [32]},
            "algorithm": {"batch_chunks": 8, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 8, "chunk_length": 8},
            "league": {"snapshot_every_versions": 2, **league},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 100},
        }
    )


def tiny_config(job: str, env: dict[str, object]) -> JobConfig:
    return parse_config(
        {
            "job": job,
            "env": env,
            "model": {"hidden": [16]},
            "algorithm": {"batch_chunks": 4, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 4, "chunk_length": 8},
            "transport": {"max_stream_length": 10_000},
        }
    )


def train_until_starved(learner: Learner) -> int:
    """Runs learner turns until no full batch is left; returns the updates made."""
    updates = 0
    while learner.step(block_ms=0):
        updates += 1
    return updates


def make_parts(
    cfg: JobConfig, client: redis.Redis, league: LeagueClient, run_dir: Path
) -> tuple[Learner, RolloutWorker, TrajectoryStream]:
    spec = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs).spec
    stream = TrajectoryStream(client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(client, cfg.job)
    learner = Learner(
        cfg,
        run_dir,
        stream,
        store,
        league,
        spec.obs_dim,
        spec.num_actions,
        continuous=spec.continuous,
    )
    learner.start()
    pool = PolicyPool(store, "main", cfg.model, spec.obs_dim, spec.num_actions, spec.continuous)
    pool.wait_for_learner(5.0)
    link = LeagueLink(league, "main", prefetch=cfg.actors.envs_per_actor)
    worker = RolloutWorker(cfg, "actor-test", pool, stream, link, seed=0)
    return learner, worker, stream


@pytest.mark.parametrize("league", [0.0], indirect=True)
def test_chunks_are_valid_and_carry_every_game_outcome(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = small_config(self_play_fraction=0.0, eval_fraction=0.0)
    learner, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    worker.run(lambda: False, max_steps=300)
    worker.league.close()
    entries = stream.read("inspector", count=10_000, block_ms=0)
    assert len(entries) == worker.stats.chunks_sent > 0
    spec = job_chunk_spec(cfg, Game(cfg.env.name).spec.shape)
    chunks = [decode_chunk(data, spec, job="c4test") for _, data in entries]
    steps = np.concatenate([c.rewards for c in chunks])
    dones = np.concatenate([c.dones for c in chunks])
    # connect_four pays only at the end: +-1 or 0 on terminal steps, 0 elsewhere.
    assert set(np.unique(steps[dones])) <= {-1.0, 0.0, 1.0}
    assert np.all(steps[~dones] == 0.0)
    assert 0 < dones.sum() <= worker.stats.games
    # Every env's chunks are numbered 0, 1, 2, ... with no gap.
    by_env: dict[int, list[int]] = {}
    for c in chunks:
        by_env.setdefault(c.env_index, []).append(c.sequence)
    assert all(seqs == list(range(len(seqs))) for seqs in by_env.values())
    # Each game was reported to the league exactly once.
    results = LeagueStore(tmp_path / "league.db", readonly=True).results()
    assert len(results) == worker.stats.games
    # Episode tallies: one per game (the learner plays one seat against random), and the
    # returns are the outcomes (connect_four pays +-1 or 0 at the end, nothing else).
    outcomes = Counter(r.outcome for r in results)
    assert worker.stats.episodes == {"main": worker.stats.games}
    assert worker.stats.return_sum == {"main": outcomes["a_win"] - outcomes["b_win"]}
    assert 3 * worker.stats.games <= worker.stats.decision_sum["main"] <= worker.stats.learner_steps


@pytest.mark.parametrize("league", [0.0], indirect=True)
def test_chunks_held_for_one_write_all_reach_the_stream(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    """`actors.flush_seconds` holds finished chunks for one write; whatever is held goes
    when the run ends, and an outbox a quarter of its stream's room goes at once."""
    cfg = small_config(self_play_fraction=0.0, eval_fraction=0.0)
    cfg = cfg.model_copy(update={"actors": cfg.actors.model_copy(update={"flush_seconds": 3600.0})})
    _, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    worker.run(lambda: False, max_steps=1)  # the first step writes: nothing was written yet
    lengths: list[int] = []

    def watch() -> bool:
        lengths.append(redis_client.xlen(stream.key))
        return False

    worker.run(watch, max_steps=100)
    worker.league.close()
    assert len(set(lengths)) == 1  # the hour never passed: no write while playing ...
    assert not any(worker.episodes.outbox.values())  # ... and one on the way out
    assert len(stream.read("inspector", count=10_000, block_ms=0)) == worker.stats.chunks_sent
    assert worker.stats.chunks_sent > lengths[-1]
    # One write must fit the stream: a quarter of its room is sent before the hour.
    quarter = stream.max_length // 4
    worker.episodes.outbox["main"] = [b"chunk"] * (quarter - 1)
    assert not worker.flush_due(time.monotonic())
    worker.episodes.outbox["main"].append(b"chunk")
    assert worker.flush_due(time.monotonic())
    worker.episodes.outbox["main"] = []


def test_learner_trains_acks_publishes_and_actor_adopts(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = small_config(eval_fraction=0.2)
    learner, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    start_version = learner.counters.version
    for _ in range(6):
        worker.run(lambda: False, max_steps=60)
        while learner.step(block_ms=0):
            pass
        worker.pool.refresh_learner()
    assert learner.counters.version > start_version + 2
    assert worker.pool.learner_version > start_version
    stats = stream.stats()
    assert stats["chunks_consumed"] == learner.counters.chunks_trained
    assert every_chunk_accounted_for(stats)
    snapshots = [p.id for p in league.players() if p.kind == "snapshot"]
    worker.league.close()
    assert snapshots and all(
        (tmp_path / "snapshots" / f"{s}.safetensors").exists() for s in snapshots
    )


def test_bad_chunks_go_to_dead_letters_and_stale_ones_are_counted(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = small_config().model_copy(
        update={"transport": small_config().transport.model_copy(update={"max_policy_lag": 0})}
    )
    learner, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    worker.run(lambda: False, max_steps=40)
    stream.add([b"garbage", b"\x00" * 64])
    learner.publish()  # now every chunk the worker made is 1 version behind: lag 1 > 0
    while stream.stats()["length"] > 0:  # every chunk is stale or bad: none is trained
        assert not learner.step(block_ms=0)
    assert learner.counters.chunks_rejected == 2
    assert learner.counters.chunks_dropped_lag == worker.stats.chunks_sent
    dead = stream.dead_letters()
    assert len(dead) == 2 and all("not valid safetensors" in reason for _, _, reason, _ in dead)
    worker.league.close()
    stats = stream.stats()
    assert stats["length"] == 0 and stats["chunks_rejected"] == 2


@pytest.mark.parametrize("league", [1.0], indirect=True)
def test_self_play_games_train_both_seats(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = small_config(self_play_fraction=1.0, eval_fraction=0.0)
    learner, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    worker.run(lambda: False, max_steps=200)
    worker.league.close()
    spec = job_chunk_spec(cfg, Game(cfg.env.name).spec.shape)
    chunks = [decode_chunk(d, spec) for _, d in stream.read("inspector", 10_000, 0)]
    # Both seats are trained at once: more tracks than games carry data ...
    assert len({c.env_index for c in chunks}) > cfg.actors.envs_per_actor
    # ... and every learner decision of every game is there: both players' moves.
    assert worker.stats.learner_steps == worker.stats.env_steps - len(worker.stepper.pending)


def test_parallel_game_without_masks_trains(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    """rock-paper-scissors: simultaneous moves, one-hot observations, no action mask."""
    cfg = tiny_config("rpstest", {"name": "pettingzoo.classic.rps_v2", "api": "parallel"})
    learner, worker, stream = make_parts(cfg, redis_client, league, tmp_path)
    worker.run(lambda: False, max_steps=100)
    trained = train_until_starved(learner)
    worker.league.close()
    assert trained > 0 and learner.counters.chunks_rejected == 0
    assert stream.stats()["chunks_rejected"] == 0


def test_sumo_with_continuous_actions_trains(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    """MuJoCo sumo (two discs): Box actions, Gaussian policy, the env's own verdicts."""
    env = {"name": "envs.sumo.sumo_env", "api": "parallel", "kwargs": {"max_steps": 40}}
    learner, worker, stream = make_parts(
        tiny_config("sumotest", env), redis_client, league, tmp_path
    )
    assert (
        worker.episodes.specs["main"].continuous and worker.episodes.specs["main"].num_actions == 2
    )
    worker.run(lambda: False, max_steps=120)
    trained = train_until_starved(learner)
    worker.league.close()
    assert trained > 0 and learner.counters.chunks_rejected == 0
    assert worker.stats.games >= 8  # 40-step episodes: each slot finished some
    assert LeagueStore(tmp_path / "league.db", readonly=True).result_count() == worker.stats.games


def test_team_game_trains_one_policy_per_team(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    """mpe2 simple_tag: three predators (obs 16) against one prey (obs 14). Each team has
    its own learner, stream and league lineage; the league only pairs across teams."""
    env = {
        "name": "mpe2.simple_tag_v3",
        "api": "parallel",
        "kwargs": {"max_cycles": 10},
        "teams": {"predator": ["adversary_"], "prey": ["agent_"]},
        "scoring_team": "predator",
    }
    cfg = tiny_config("tagtest", env)
    cfg = cfg.model_copy(update={"league": cfg.league.model_copy(update={"eval_fraction": 0.2})})
    teams = Game(env["name"], "parallel", env["kwargs"], cfg.team_prefixes()).teams
    assert {t: (s.obs_dim, len(s.agents)) for t, s in teams.items()} == {
        "predator": (16, 3),
        "prey": (14, 1),
    }
    store = WeightStore(redis_client, cfg.job)
    learners, pools, streams = {}, {}, {}
    for team, spec in teams.items():
        streams[team] = TrajectoryStream(redis_client, cfg.stream_name(team))
        learners[team] = Learner(
            cfg, tmp_path, streams[team], store, league, spec.obs_dim, spec.num_actions,
            lineage=team,
        )  # fmt: skip
        learners[team].start()
        pools[team] = PolicyPool(store, team, cfg.model, spec.obs_dim, spec.num_actions)
        pools[team].wait_for_learner(5.0)
    link = LeagueLink(league, list(teams), prefetch=4, eval_retry_s=0.0, teams=True)
    worker = RolloutWorker(cfg, "actor-test", pools, streams, link, seed=0)
    # Eval matches need a frozen player on each side (a snapshot, or random), prefetched
    # by the link's thread: play rounds until one came (bounded, not timed).
    for round_ in range(20):
        worker.run(lambda: False, max_steps=40)
        for learner in learners.values():
            train_until_starved(learner)
            learner.snapshot()
        if round_ >= 3 and worker.stats.eval_games > 0:
            break
    link.close()
    for team, learner in learners.items():
        assert learner.counters.updates > 0 and learner.counters.chunks_rejected == 0, team
        learner.checkpoint()
        assert (tmp_path / "checkpoints" / f"learner-{team}.safetensors").exists()
    # Matches only ever pair a predator-side player with a prey-side player.
    league_db = LeagueStore(tmp_path / "league.db", readonly=True)
    results = league_db.results()
    assert len(results) == worker.stats.games > 0
    for r in results:
        lineages = {r.player_a.split("@")[0], r.player_b.split("@")[0]} - {"random"}
        assert lineages <= {"predator", "prey"} and len(lineages) in (1, 2), r
        assert r.player_a != r.player_b, r
        if len(lineages) == 1:  # the other side was the random player
            assert "random" in (r.player_a, r.player_b), r
    assert any(r.kind == "eval" for r in results)
    assert {"predator", "prey"} <= {p.id for p in league_db.players()}
    # Eval plays one team's checkpoint against the other team's snapshot (or random);
    # tag has no draws: the predators win iff they catch the prey.
    prey_snapshot = sorted((tmp_path / "snapshots").glob("prey@v*.safetensors"))[-1].stem
    for team, opponent in (("predator", f"snapshot:{prey_snapshot}"), ("prey", "random")):
        result = evaluate(tmp_path, cfg, opponent, games=4, team=team)
        assert result.wins + result.losses == 4 and result.draws == 0
        assert result.policy_version == learners[team].counters.version
    with pytest.raises(ValueError, match="pass --team"):
        evaluate(tmp_path, cfg, "random", games=2)


def test_scripted_builtin_is_a_training_opponent(redis_client: redis.Redis, tmp_path: Path) -> None:
    """league.builtins: the sumo charge bot plays learner games like any frozen player."""
    settings = LeagueSettings(self_play_fraction=0.0, seed=0, builtins=("random", "charge"))
    server = LeagueServer(tmp_path / "league.db", token=TOKEN, settings=settings)
    server.start()
    league = LeagueClient(server.address, TOKEN)
    try:
        env = {"name": "envs.sumo.sumo_env", "api": "parallel", "kwargs": {"max_steps": 30}}
        cfg = tiny_config("chargetest", env)
        learner, worker, _ = make_parts(cfg, redis_client, league, tmp_path)
        worker.run(lambda: False, max_steps=150)
        worker.league.close()
        assert train_until_starved(learner) > 0
        opponents = Counter(r.player_b for r in LeagueStore(tmp_path / "league.db").results())
        assert set(opponents) == {"random", "charge"} and min(opponents.values()) >= 3, opponents
    finally:
        league.close()
        server.stop(0)
