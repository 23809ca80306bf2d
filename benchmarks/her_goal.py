"""A goal job (HER) for a budget of env steps, its parts in one process, then its success
on episodes never seen in training (for sim2real configs, also on each held-out set).

    python benchmarks/her_goal.py --config configs/her_fetch_reach.yaml --env-steps 10000
    python benchmarks/her_goal.py --config configs/her_bitflip.yaml --env-steps 2000000 \\
        --set algorithm.her.strategy=none

A goal rollout worker and the learner (the config's off-policy algorithm over the
hindsight replay buffer) joined by the real trajectory stream and weight store (embedded
Redis) and a league service, stepped in turns. Prints the greedy evaluation episodes'
success along the way (the worker's `league.eval_fraction` share; a curve of success
against env steps and seconds) and, at the end, the final weights' success over
`--eval-episodes` fresh episodes whose seed no training run uses. One JSON object on
stdout, the curve on stderr.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.evaluation import goal_env_for_eval, goal_successes  # noqa: E402
from actors.goal_rollout import GoalWorker  # noqa: E402
from core.config import JobConfig, LeagueSettings, load_config  # noqa: E402
from core.dynamics import DynamicsRanges  # noqa: E402
from envs.goal import goal_task  # noqa: E402
from league.client import LeagueClient  # noqa: E402
from league.server import LeagueServer  # noqa: E402
from learner.learner import Learner  # noqa: E402
from transport.redis import EmbeddedRedis  # noqa: E402
from transport.streams import TrajectoryStream  # noqa: E402
from transport.weights import WeightStore  # noqa: E402

EVAL_SEED = 10_000_019  # never a training seed


def final_success(
    worker: GoalWorker, episodes: int, dynamics: DynamicsRanges | None = None
) -> float:
    """Greedy episodes of the worker's current weights on fresh goals (EVAL_SEED), in the
    physics `dynamics` draws from (None: nominal)."""
    env = goal_env_for_eval(worker.config, episodes, EVAL_SEED, dynamics)
    try:
        player = worker.pool.kind.player(worker.pool.learner, torch.Generator().manual_seed(0))
        return goal_successes(player, env, episodes, EVAL_SEED) / episodes
    finally:
        env.close()


def run(
    config: JobConfig,
    env_steps: int,
    seed: int,
    eval_episodes: int = 1000,
    report_every: int = 100_000,
) -> dict[str, Any]:
    """Trains `config`'s goal job for `env_steps` env steps (seed `seed` for the algorithm
    and the worker); returns the curve and the final success."""
    config = config.model_copy(
        update={"algorithm": config.algorithm.model_copy(update={"seed": seed})}
    )
    task = goal_task(config.env.name)
    if task is None:
        raise SystemExit(f"{config.env.name} is no goal task")
    probe = task.make(1, seed=0, **dict(config.env.kwargs))
    obs_dim, actions, continuous, goal_dim = (
        probe.obs_dim, probe.num_actions, probe.continuous, probe.goal_dim
    )  # fmt: skip
    probe.close()
    torch.set_num_threads(1)
    start = time.time()
    curve: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as endpoint:
        server = LeagueServer(Path(tmp) / "league.db", token="bench", settings=LeagueSettings())
        server.start()
        try:
            league = LeagueClient(server.address, "bench")
            client = endpoint.client()
            stream = TrajectoryStream(client, config.job, 100_000)
            store = WeightStore(client, config.job)
            learner = Learner(
                config, Path(tmp), stream, store, league, obs_dim, actions,
                continuous=continuous, goal_dim=goal_dim,
            )  # fmt: skip
            learner.start()
            exploration = config.algorithm.actor_exploration(0, 1)
            worker = GoalWorker(config, "bench", store, stream, seed=seed, exploration=exploration)
            worker.pool.wait_for_learner(10.0)
            last = (0, 0, 0)
            while worker.stats.env_steps < env_steps:
                worker.run(lambda: False, max_steps=10)
                while learner.step(block_ms=0):
                    pass
                s = worker.stats
                if s.env_steps - last[0] >= report_every or s.env_steps >= env_steps:
                    window = s.eval_episodes - last[1]
                    point = {
                        "env_steps": s.env_steps,
                        "eval_success": (s.eval_successes - last[2]) / window if window else None,
                        "eval_episodes": window,
                        "seconds": round(time.time() - start, 1),
                    }
                    curve.append(point)
                    print(json.dumps(point), file=sys.stderr, flush=True)
                    last = (s.env_steps, s.eval_episodes, s.eval_successes)
            worker.maybe_refresh_weights(float("inf"))
            success = final_success(worker, eval_episodes)
            randomization = config.env.randomization
            heldout = {
                name: final_success(worker, eval_episodes, ranges)
                for name, ranges in (randomization.heldout if randomization else {}).items()
            }
        finally:
            server.stop(0)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "config": config.job,
        "env": config.env.model_dump(mode="json"),
        "algorithm": config.algorithm.name,
        "strategy": getattr(getattr(config.algorithm, "her", None), "strategy", None),
        "seed": seed,
        "env_steps": worker.stats.env_steps,
        "final_success": success,
        "final_eval_episodes": eval_episodes,
        # Sim2real configs: the same on each held-out set (eval_episodes each), and their mean.
        "heldout_success": heldout,
        "heldout_mean": float(np.mean(list(heldout.values()))) if heldout else None,
        "gradient_steps": getattr(
            getattr(learner.algorithm, "replay", None), "gradient_steps", None
        ),
        "seconds": round(time.time() - start, 1),
        "curve": curve,
        "commit": commit,
        "machine": platform.processor() or platform.machine(),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/her_bitflip.yaml")
    parser.add_argument("--env-steps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=1000)
    parser.add_argument("--report-every", type=int, default=1000, help="env steps")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    config = load_config(args.config, args.overrides)
    result = run(config, args.env_steps, args.seed, args.eval_episodes, args.report_every)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
