"""Keeps benchmarks/learner.py, latency.py and throughput.py from rotting: each script's core
at tiny sizes, its helpers, and the stats fields latency.py reads from a real run (an
in-process learner and rollout worker over a real Redis and league, no Ray)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import redis
import torch

from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import RolloutWorker
from benchmarks import cpu_accounting, latency, league_rpc, throughput
from benchmarks import learner as learner_bench
from cluster.learner_actor import LearnerActor
from cluster.rollout_actor import RolloutActor
from core.config import load_config, parse_config
from envs.pettingzoo_adapter import Game
from league.client import LeagueClient
from learner.learner import Learner
from transport.streams import TrajectoryStream
from transport.weights import WeightStore

ROOT = Path(__file__).resolve().parents[1]


# -- benchmarks/throughput.py ------------------------------------------------------


def test_throughput_rates_of_the_batched_env_and_both_workers() -> None:
    overrides = ["actors.envs_per_actor=4", "model.hidden=[16]"]
    config = load_config(ROOT / "configs/sumo_disc.yaml", overrides)
    per_game = load_config(ROOT / "configs/sumo_disc.yaml", [*overrides, "actors.vector_env=false"])
    assert throughput.raw_vector_rate(config, 0.2) > 0
    assert throughput.actors_only_rate(config, 0.5) > 0
    assert throughput.actors_only_rate(per_game, 0.5) > 0


# -- benchmarks/league_rpc.py ------------------------------------------------------
def test_league_rpc_measures_server_cpu_per_game() -> None:
    row = league_rpc.measure(games=300, batch=32, snapshots=3, sampling="pfsp_hard")
    assert row["games"] == 300 and row["snapshots"] == 3
    assert row["server_cpu_s"] > 0.0 and row["server_us_per_game"] > 0.0
    assert row["games_per_s"] > 0.0


# -- benchmarks/learner.py ---------------------------------------------------------
def test_cpu_accounting_names_the_thread_that_burns_cpu() -> None:
    import threading
    import time

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=spin, name="bench-spinner")
    spinner.start()
    try:
        start = cpu_accounting.snapshot()
        time.sleep(1.0)
        end = cpu_accounting.snapshot()
    finally:
        stop.set()
        spinner.join()
    used = cpu_accounting.cores_used(start, end)
    # The spinner is named from `threading` and counted in this (the driver's) process;
    # shares are non-negative core counts.
    assert used["driver_threads"]["bench-spinner"] > 0
    driver = next(k for k in used["processes"] if k.startswith("driver"))
    # (the process total is read right after its threads: well under a ms apart)
    assert used["processes"][driver] >= used["driver_threads"]["bench-spinner"] - 0.05
    assert all(v >= 0 for v in used["processes"].values())


def test_learner_bench_one_small_batch_per_config() -> None:
    path = str(ROOT / "configs" / "connect_four.yaml")
    config = load_config(path)
    result = learner_bench.bench_config(path, config, [1024], [torch.device("cpu")], updates=1)
    assert (result["obs_dim"], result["num_actions"], result["continuous"]) == (84, 7, False)
    (row,) = result["rows"]
    # a batch of 1,024 steps is that many of the config's chunks
    assert row["batch_steps"] == 1024
    assert row["batch_chunks"] == 1024 // config.actors.chunk_length
    assert row["update_samples_per_s"] >= row["learner_step_samples_per_s"] > 0
    assert set(row["share"]) == set(learner_bench.STAGES)
    assert abs(sum(row["share"].values()) - 1.0) < 0.01


def test_learner_bench_main_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The command line end to end, with the continuous sumo spec beside connect_four."""
    configs = [str(ROOT / "configs" / name) for name in ("connect_four.yaml", "sumo_disc.yaml")]
    argv = ["--config", *configs, "--batch-steps", "1024", "--updates", "1"]
    learner_bench.main([*argv, "--set", "model.hidden=[32]"])
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert [c["continuous"] for c in result["configs"]] == [False, True]
    assert result["configs"][1]["obs_dim"] == 34 and result["torch_threads"] == 1
    assert "update/s" in err and "sumo_disc" in err


def test_synthetic_chunks_pass_the_codec() -> None:
    overrides = ["model.hidden=[16]", "actors.chunk_length=32"]
    config = load_config(ROOT / "configs" / "connect_four.yaml", overrides)
    spec = learner_bench.game_spec(config)
    net = learner_bench.build_net(config.model, spec.obs_dim, spec.num_actions)
    chunks = learner_bench.synthetic_chunks(net, spec, 4, 32)
    cspec = learner_bench.chunk_spec(config, spec)
    for chunk in chunks:
        data = learner_bench.encode_chunk(chunk)
        back = learner_bench.decode_chunk(data, cspec, job=learner_bench.JOB)
        assert back.action_mask is not None and back.num_steps == 32


# -- benchmarks/latency.py helpers ---------------------------------------------------
def test_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert latency.nearest_rank(values, 0.5) == 50.0
    assert latency.nearest_rank(values, 0.99) == 99.0
    assert latency.nearest_rank(values, 1.0) == 100.0
    assert latency.nearest_rank([7.0], 0.99) == 7.0
    assert latency.nearest_rank([], 0.5) is None


def test_histogram_quantiles_and_lag_summary() -> None:
    hist = {0: 10, 1: 30, 2: 50, 5: 10}  # 100 chunks
    assert latency.histogram_quantile(hist, 0.4) == 1
    assert latency.histogram_quantile(hist, 0.5) == 2
    assert latency.histogram_quantile(hist, 0.9) == 2
    assert latency.histogram_quantile(hist, 0.91) == 5
    assert latency.histogram_quantile({}, 0.5) is None
    # Keys as strings (a JSON round trip) and empty bins are fine.
    summary = latency.lag_summary({"2": 50, "0": 10, "1": 30, "5": 10, "3": 0})
    assert summary["count"] == 100 and summary["median"] == 2 and summary["p90"] == 2
    assert summary["max"] == 5 and summary["mean"] == 1.8 and summary["share_le_1"] == 0.4
    assert summary["histogram"] == {"0": 10, "1": 30, "2": 50, "5": 10}
    assert latency.lag_summary({})["median"] is None


def fake_summary(lineages: list[str]) -> dict[str, object]:
    learner = {
        "version": 30,
        "lag_histogram": {0: 4, 1: 5, 2: 1},
        "step_lag_histogram": {0: 60, 1: 30, 2: 10},
    }
    stream = {"chunks_added": 10, "chunks_dropped_lag": 2}
    actors = [
        {
            "actor_id": f"actor{i}",
            "weight_adoption": {
                lineage: {
                    "count": 29,
                    "p50_ms": 20.0 + i,
                    "p99_ms": 60.0 + 50 * i,
                    "max_ms": 70.0 + 50 * i,
                    "mean_ms": 25.0,
                    "versions_skipped": i,
                }
                for lineage in lineages
            },
        }
        for i in range(2)
    ]
    one = len(lineages) == 1
    return {
        "seconds": 10.0,
        "learner": learner if one else dict.fromkeys(lineages, learner),
        "stream": stream if one else dict.fromkeys(lineages, stream),
        "actors": actors,
        "throughput": {"learner_steps_per_s": 1000.0},
    }


@pytest.mark.parametrize("lineages", [["main"], ["predator", "prey"]])
def test_summarize_reports_the_worst_actor_and_each_learner(lineages: list[str]) -> None:
    out = latency.summarize(fake_summary(lineages), 0.05)
    adoption = out["adoption"]
    assert adoption["adoptions"] == 58 * len(lineages)
    assert adoption["versions_skipped"] == len(lineages)
    assert adoption["worst_actor_p99_ms"] == 110.0 and adoption["meets_p99_target"] is False
    assert set(out["policy_lag"]) == set(lineages)
    lag = next(iter(out["policy_lag"].values()))
    assert lag["median"] == 1 and lag["max"] == 2 and lag["chunks_dropped_lag"] == 2
    assert out["meets_lag_target"] is True
    latency.print_table([out])  # the table prints without error


# -- the stats fields latency.py reads, from real (in-process) parts ----------------
def test_adoption_and_lag_fields_from_a_short_run(
    redis_client: redis.Redis, league: LeagueClient, tmp_path: Path
) -> None:
    cfg = parse_config(
        {
            "job": "benchsmoke",
            "env": {"name": "pettingzoo.classic.connect_four_v3"},
            "model": {"hidden": [16]},
            "algorithm": {"batch_chunks": 8, "minibatches": 2, "epochs": 1},
            "actors": {"envs_per_actor": 8, "chunk_length": 8},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 100},
        }
    )
    spec = Game(cfg.env.name).spec
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    learner = Learner(cfg, tmp_path, stream, store, league, spec.obs_dim, spec.num_actions)
    learner.start()
    pool = PolicyPool(store, "main", cfg.model, spec.obs_dim, spec.num_actions)
    pool.wait_for_learner(5.0)
    assert pool.adoption_stats()["count"] == 0  # the start-up adoption is not latency
    worker = RolloutWorker(
        cfg, "actor-bench", pool, stream, LeagueLink(league, "main", prefetch=8), seed=0
    )
    for _ in range(3):
        worker.run(lambda: False, max_steps=40)
        while learner.step(block_ms=0):
            pass
        pool.refresh_learner()
    worker.league.close()

    adoption = pool.adoption_stats()
    assert adoption["count"] >= 1 and adoption["p50_ms"] is not None
    assert adoption["p50_ms"] <= adoption["p99_ms"] <= adoption["max_ms"]
    assert adoption["versions_skipped"] >= 0
    histogram = learner.lag_histogram()
    assert sum(histogram.values()) == learner.counters.chunks_trained > 0
    step_histogram = learner.step_lag_histogram()
    assert sum(step_histogram.values()) == learner.counters.steps_trained
    # A chunk's oldest step is its most stale: per-step lags never exceed the chunk's.
    assert max(step_histogram) <= max(histogram)

    # The Ray actors' methods that carry these fields, on bare instances (no Ray).
    actor = object.__new__(RolloutActor.__ray_actor_class__)
    actor.worker = worker
    assert actor._adoption() == {"main": pool.adoption_stats()}
    learner_actor = object.__new__(LearnerActor.__ray_actor_class__)
    learner_actor.learner = learner
    assert learner_actor.stats()["lag_histogram"] == histogram
    assert learner_actor.stats()["step_lag_histogram"] == step_histogram

    summary = {
        "seconds": 1.0,
        "learner": {
            **asdict(learner.counters),
            "lag_histogram": histogram,
            "step_lag_histogram": step_histogram,
        },
        "stream": stream.stats(),
        "actors": [{"actor_id": "actor-bench", "weight_adoption": actor._adoption()}],
        "throughput": {},
    }
    out = latency.summarize(json.loads(json.dumps(summary)), 0.05)  # via JSON, as printed
    assert out["adoption"]["adoptions"] == adoption["count"]
    assert out["policy_lag"]["main"]["count"] == learner.counters.chunks_trained
    assert out["policy_lag"]["main"]["per_step"]["count"] == learner.counters.steps_trained


def test_her_goal_bench_evaluates_a_recurrent_sim2real_arm_on_each_heldout_set() -> None:
    from benchmarks import her_goal

    overrides = [
        "model.hidden=[16]", "model.lstm=8", "algorithm.learning_starts=100",
        "algorithm.batch_size=16", "algorithm.sequence_length=8",
    ]  # fmt: skip
    config = load_config("configs/sim2real_fetch_push.yaml", overrides)
    result = her_goal.run(config, env_steps=200, seed=1, eval_episodes=2, report_every=100)
    assert set(result["heldout_success"]) == set(config.env.randomization.heldout)
    assert 0.0 <= result["heldout_mean"] <= 1.0 and result["env_steps"] >= 200
    assert result["gradient_steps"] > 0
