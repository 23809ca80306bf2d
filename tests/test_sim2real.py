"""Sim2real jobs end to end on real parts (Redis, the league, the learner): the config,
its checks, goal actors that record every episode's physics in the chunks they stream,
and evaluation on named held-out dynamics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import redis
from typer.testing import CliRunner

from actors.goal_rollout import GoalWorker
from cluster.checks import check_job
from cluster.cli import app
from core.chunks import job_chunk_spec
from core.codec import decode_chunk
from core.config import ConfigError, JobConfig, dump_config, load_config, parse_config
from core.dynamics import DynamicsRanges
from core.spaces import PolicyShape
from league.client import LeagueClient
from learner.learner import Learner
from transport.streams import CHUNK_FIELD, TrajectoryStream
from transport.weights import WeightStore

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
CONFIG = Path(__file__).parent.parent / "configs" / "sim2real_fetch_push.yaml"


def _json_line(output: str) -> dict:
    """The JSON object `selfplay eval --json` printed (library warnings may follow it)."""
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def _small(**overrides: object) -> list[str]:
    sets = {
        "model.hidden": "[32]",
        "algorithm.learning_starts": "50",
        "algorithm.batch_size": "16",
        "actors.envs_per_actor": "2",
    } | {k: str(v) for k, v in overrides.items()}
    return [f"{k}={v}" for k, v in sets.items()]


def test_the_sim2real_config_loads_and_its_checks_name_the_problem() -> None:
    cfg = load_config(CONFIG)
    check_job(cfg)
    assert cfg.env.randomization is not None
    assert cfg.env.randomization.train.object_friction == (0.1, 5.0)  # Peng's, the default
    assert set(cfg.env.randomization.heldout) >= {"slippery_block", "late_actions", "inside"}
    assert (
        load_config(CONFIG, ["env.randomization.train={}"]).env.randomization.train.ranges() == {}
    )
    with pytest.raises(
        ConfigError, match="env.randomization.heldout.bad: this env cannot randomise object_mass"
    ):
        check_job(
            load_config(
                "configs/her_fetch_reach.yaml",
                ["env.randomization={train: {}, heldout: {bad: {object_mass: 2}}}"],
            )
        )
    with pytest.raises(ConfigError, match="BitFlipVector has no MuJoCo physics"):
        check_job(load_config("configs/her_bitflip.yaml", ["env.randomization={}"]))
    with pytest.raises(
        ConfigError, match="env.randomization.train: this env cannot randomise gravity"
    ):
        check_job(load_config("configs/sumo_bug.yaml", ["env.randomization.train={gravity: 9.0}"]))
    with pytest.raises(ConfigError, match="needs a batched env"):
        check_job(
            load_config(
                "configs/sumo_bug.yaml",
                ["env.randomization.train={friction: [0.5, 1]}", "actors.vector_env=false"],
            )
        )
    with pytest.raises(ConfigError, match="object_mass"):
        load_config(CONFIG, ["env.randomization.train.object_mass=[0, 2]"])  # below its bounds
    assert load_config(CONFIG) == parse_config(__import__("yaml").safe_load(dump_config(cfg)))


@pytest.mark.parametrize("arm", ["feed-forward", "lstm-omniscient"])
def test_goal_actors_record_each_episodes_physics_and_never_a_heldout_set(
    arm: str, redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    """The learner trains on them too: the feed-forward SAC, and the recurrent one whose
    critics read each episode's physics (the comparison arms of the sim2real config)."""
    lstm = arm != "feed-forward"
    extra = {"model.lstm": 16 if lstm else 0, "algorithm.omniscient_critic": str(lstm).lower()}
    cfg = load_config(CONFIG, _small(**extra))
    check_job(cfg)
    randomization = cfg.env.randomization
    assert randomization is not None
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(cfg, tmp_path, stream, store, league, 25, 4, continuous=True, goal_dim=3)
    learner.start()
    worker = GoalWorker(cfg, "actor-s2r", store, stream, seed=4)
    worker.pool.wait_for_learner(5.0)
    worker.run(lambda: False, max_steps=200)  # 2 games x 200 steps: ~7 training episodes
    spec = job_chunk_spec(cfg, PolicyShape(25, 4, True, 3))
    assert spec.dynamics_dim == len(randomization.train.ranges()) == 10
    names = tuple(randomization.train.ranges())
    chunks = [
        decode_chunk(fields[CHUNK_FIELD], spec, cfg.job)
        for _, fields in redis_client.xrange(stream.key)
    ]
    assert len(chunks) >= 4
    heldout = list(randomization.heldout.values())
    seen = set()
    for chunk in chunks:
        rows = chunk.dynamics
        assert rows is not None and rows.shape == (50, 10)
        assert (rows == rows[0]).all()  # one episode, one draw
        values = dict(zip(names, rows[0].astype(float).tolist(), strict=True))
        for name, (low, high) in randomization.train.ranges().items():  # float32 rows
            assert low - 1e-6 <= values[name] <= high + 1e-6, name
        for held in heldout:  # no training episode played a held-out robot
            point = {k: low for k, (low, _) in held.ranges().items()}
            assert not all(
                np.isclose(values.get(k, np.nan), v, rtol=1e-6) for k, v in point.items()
            )
        seen.add(tuple(rows[0].round(6)))
    assert len(seen) == len(chunks)  # every episode drew its own physics
    while learner.step(block_ms=0):  # the learner takes them all
        pass
    assert learner.counters.chunks_rejected == 0 and learner.counters.steps_trained > 0
    assert learner.counters.gradient_steps > 0
    critic_inputs = learner.algorithm.critic.q1[0][0].in_features  # type: ignore[attr-defined]
    assert critic_inputs == 25 + 3 + 4 + (10 if arm != "feed-forward" else 0)


def _checkpointed_run(
    cfg: JobConfig,
    redis_client: redis.Redis,
    league: LeagueClient,
    run_dir: Path,
    dims: tuple[int, int, int] = (25, 4, 3),
) -> Learner:
    """A run dir holding `cfg` and its learner's first checkpoint (obs, actions, goal
    sizes `dims`; goal size 0: a two-seat game)."""
    obs_dim, actions, goal_dim = dims
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(
        cfg, run_dir, stream, store, league, obs_dim, actions, continuous=True, goal_dim=goal_dim
    )
    learner.start()
    learner.checkpoint()
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    return learner


def test_eval_plays_nominal_training_and_heldout_dynamics(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    feed_forward = {"model.lstm": 0, "algorithm.omniscient_critic": "false"}
    cfg = load_config(CONFIG, _small(**feed_forward))  # as the plain run below
    learner = _checkpointed_run(cfg, redis_client, league, tmp_path)
    runner = CliRunner()

    def run(*args: str) -> dict:
        result = runner.invoke(app, ["eval", str(tmp_path), "--episodes", "3", "--json", *args])
        assert result.exit_code == 0, result.output
        return _json_line(result.output)

    assert run()["dynamics"] == "nominal" and run()["episodes"] == 3
    assert run("--dynamics", "train")["dynamics"] == "train"
    held = run("--dynamics", "heldout")
    assert held["episodes"] == 3 * len(cfg.env.randomization.heldout)
    assert set(held["sets"]) == set(cfg.env.randomization.heldout)
    assert held["success_rate"] == held["successes"] / held["episodes"]
    bad = runner.invoke(app, ["eval", str(tmp_path), "--episodes", "3", "--dynamics", "sideways"])
    assert bad.exit_code != 0 and "nominal, train or heldout" in bad.output
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.yaml").write_text(
        dump_config(load_config("configs/her_fetch_push.yaml", _small()))
    )
    none = runner.invoke(app, ["eval", str(plain), "--episodes", "3", "--dynamics", "heldout"])
    assert none.exit_code != 0 and "no env.randomization" in none.output
    # A run trained without randomisation, against another config's held-out sets.
    learner.checkpoint()
    (plain / "checkpoints").mkdir()
    for f in (tmp_path / "checkpoints").iterdir():
        (plain / "checkpoints" / f.name).write_bytes(f.read_bytes())
    other = runner.invoke(
        app,
        [
            "eval",
            str(plain),
            "--episodes",
            "2",
            "--json",
            "--dynamics",
            "heldout",
            "--dynamics-from",
            str(CONFIG),
        ],
    )
    assert other.exit_code == 0, other.output
    assert set(_json_line(other.output)["sets"]) == set(cfg.env.randomization.heldout)


def test_heldout_points_are_single_values() -> None:
    cfg = load_config(CONFIG)
    assert cfg.env.randomization is not None
    for name, ranges in cfg.env.randomization.heldout.items():
        assert all(low == high for low, high in ranges.ranges().values()), name
    assert DynamicsRanges(object_mass=3.0).ranges() == {"object_mass": (3.0, 3.0)}


def test_sumo_actors_record_each_games_physics_per_step(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The batched self-play worker randomises every game of its SumoVector: each chunk row
    carries the physics of the episode it was played in, constant between episode ends."""
    from core.config import LeagueSettings
    from tests.test_vector_rollout import _worker

    ranges = {"body_mass": [0.5, 2.0], "friction": [0.3, 1.0], "action_latency": [0, 1]}
    cfg = parse_config(
        {
            "job": "robusttest",
            "env": {
                "name": "envs.sumo.sumo_env",
                "api": "parallel",
                "kwargs": {"bodies": ["bug", "bug"], "max_steps": 30},
                "randomization": {"train": ranges},
            },
            "model": {"hidden": [16]},
            "algorithm": {"batch_chunks": 4, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 3, "chunk_length": 8},
            "league": {"eval_fraction": 0.0},
            "transport": {"max_stream_length": 10_000},
        }
    )
    check_job(cfg)
    worker, stream, server = _worker(cfg, redis_client, tmp_path, LeagueSettings(seed=0))
    try:
        worker.run(lambda: False, max_steps=100)
        worker.league.close()
    finally:
        server.stop(0)
    vec = worker.stepper.vec
    assert vec.dynamics_names == ("body_mass", "friction", "action_latency")
    obs_dim = vec.obs_dim
    spec = job_chunk_spec(cfg, PolicyShape(obs_dim, vec.act_dim, True))
    assert spec.dynamics_dim == 3
    chunks = [decode_chunk(d, spec, cfg.job) for _, d in stream.read("inspector", 10_000, 0)]
    assert len(chunks) >= 10
    draws = set()
    for chunk in chunks:
        rows = chunk.dynamics
        assert rows is not None
        assert ((rows[:, 0] >= 0.5 - 1e-6) & (rows[:, 0] <= 2.0 + 1e-6)).all()
        assert ((rows[:, 1] >= 0.3 - 1e-6) & (rows[:, 1] <= 1.0 + 1e-6)).all()
        assert set(np.unique(rows[:, 2])) <= {0.0, 1.0}
        segment_start = 0
        for t, done in enumerate(chunk.dones):  # one draw per episode
            if done or t == len(chunk.dones) - 1:
                assert (rows[segment_start : t + 1] == rows[segment_start]).all()
                segment_start = t + 1
        draws.update(tuple(r) for r in rows.round(6))
    assert len(draws) >= 2 * cfg.actors.envs_per_actor  # several episodes per game


def test_two_seat_eval_plays_each_heldout_body(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    from envs.pettingzoo_adapter import Game

    robust = Path(__file__).parent.parent / "configs" / "sumo_bug_robust.yaml"
    cfg = load_config(robust, ["model.hidden=[16]", "env.kwargs.max_steps=20"])
    check_job(cfg)
    randomization = cfg.env.randomization
    assert randomization is not None
    game = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs)
    nominal = game.env.model.body_mass.copy()
    game.randomize(randomization.heldout["heavy"], seed=0)
    game.reset(seed=1)
    assert np.allclose(game.env.model.body_mass[1:], 3.0 * nominal[1:])
    game.close()
    spec = Game(cfg.env.name, cfg.env.api, cfg.env.kwargs).spec
    _checkpointed_run(cfg, redis_client, league, tmp_path, (spec.obs_dim, spec.num_actions, 0))
    args = ["eval", str(tmp_path), "--games", "4", "--opponent", "charge", "--json"]
    result = CliRunner().invoke(app, [*args, "--dynamics", "heldout"])
    assert result.exit_code == 0, result.output
    doc = _json_line(result.output)
    assert set(doc["sets"]) == set(randomization.heldout)
    assert doc["games"] == 4 * len(randomization.heldout)
    assert doc["wins"] == sum(s["wins"] for s in doc["sets"].values())
    nominal_doc = _json_line(CliRunner().invoke(app, args).output)
    assert nominal_doc["dynamics"] == "nominal" and nominal_doc["games"] == 4


def test_eval_carries_a_recurrent_policys_state(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = load_config(CONFIG, [*_small(**{"model.lstm": 8}), "job=sim2real_lstm_eval"])
    _checkpointed_run(cfg, redis_client, league, tmp_path)
    args = ["eval", str(tmp_path), "--episodes", "2", "--json", "--dynamics", "heldout"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = _json_line(result.output)
    assert doc["episodes"] == 2 * len(doc["sets"]) == 2 * len(cfg.env.randomization.heldout)
