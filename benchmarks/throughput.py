"""Raw env stepping vs the end-to-end rate the learner consumes, side by side in one run.

    python benchmarks/throughput.py --config configs/connect_four.yaml --seconds 60

(a) raw: the bare PettingZoo env on one core, uniformly random legal actions, no
    learning, no inference, no transport: the ceiling for one actor process.
(b) end to end: `selfplay run` with the same config (embedded Redis, league, learner,
    actors); rates are measured between the watcher's first and last samples, so
    start-up is excluded.
Prints one JSON object on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.config import JobConfig, load_config  # noqa: E402
from cluster.launcher import run_job  # noqa: E402
from envs.pettingzoo_adapter import Game  # noqa: E402


def raw_pettingzoo_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """Env steps/s of the bare AEC env with random legal moves (turn-based games)."""
    module = importlib.import_module(config.env.name.partition(":")[0])
    env = module.env(**config.env.kwargs)
    rng = np.random.default_rng(seed)
    steps, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        env.reset(seed=int(rng.integers(2**31)))
        for _agent in env.agent_iter():
            obs, _, term, trunc, _ = env.last()
            if term or trunc:
                env.step(None)
                continue
            env.step(int(rng.choice(np.flatnonzero(obs["action_mask"]))))
            steps += 1
    return steps / (time.perf_counter() - start)


def adapter_rate(config: JobConfig, seconds: float, seed: int = 0) -> float:
    """The same through our `Game` adapter (observation flattening, masks, rewards)."""
    game = Game(config.env.name, config.env.api, config.env.kwargs)
    rng = np.random.default_rng(seed)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        game.reset(seed=int(rng.integers(2**31)))
        while not game.done:
            actions = {}
            for agent in game.to_act():
                _, mask = game.observe(agent)
                actions[agent] = int(rng.choice(np.flatnonzero(mask)))
            game.step(actions)
            steps += len(actions)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/connect_four.yaml")
    parser.add_argument("--seconds", type=float, default=60.0, help="end-to-end run length")
    parser.add_argument("--raw-seconds", type=float, default=10.0)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)

    raw = raw_pettingzoo_rate(config, args.raw_seconds)
    adapted = adapter_rate(config, args.raw_seconds)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_job(config, Path(tmp) / "run", args.seconds / 60, progress_every_s=5.0)
    e2e = summary.throughput
    result = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "actors": config.actors.num_actors,
        "envs_per_actor": config.actors.envs_per_actor,
        "raw_env_steps_per_s_1core": round(raw, 1),
        "adapter_env_steps_per_s_1core": round(adapted, 1),
        "e2e_env_steps_per_s": e2e.get("env_steps_per_s"),
        "e2e_learner_steps_per_s": e2e.get("learner_steps_per_s"),
        "e2e_window_seconds": e2e.get("window_seconds"),
        "ratio_e2e_env_to_raw": round(e2e.get("env_steps_per_s", 0.0) / raw, 3),
    }
    rows = [
        ("raw PettingZoo, random legal moves (1 core)", raw),
        ("our Game adapter, random legal moves (1 core)", adapted),
        ("end to end: env steps played by actors", e2e.get("env_steps_per_s", 0.0)),
        ("end to end: steps consumed by the learner", e2e.get("learner_steps_per_s", 0.0)),
    ]
    for name, rate in rows:
        print(f"{name:<48} {rate:>10,.0f} steps/s", file=sys.stderr)
    print(
        f"{'ratio end-to-end env / raw':<48} {result['ratio_e2e_env_to_raw']:>10.3f}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
