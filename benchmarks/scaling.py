"""Env steps/s of the whole job against the number of rollout actors, and memory per actor.

    python benchmarks/scaling.py --config configs/connect_four.yaml --actors 1 2 --seconds 90

For each actor count, one `selfplay run` of the same config (embedded Redis, league,
learner, N actors on a local Ray) for `--seconds`; rates come from the run's watcher
between its first and last samples (start-up excluded). Counts run back to back in one
process, so compare them as ratios: scaling efficiency = rate(N) / (N * rate(1)).
Memory per actor is each actor process's peak resident set (ru_maxrss) at the end.
Off-policy (goal) jobs add their learner's gradient steps/s and the replay ratio it held
(transitions sampled per env step trained; config algorithm.replay_ratio).
Prints one JSON object on stdout and a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.launcher import run_job  # noqa: E402
from core.config import load_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/connect_four.yaml")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=90.0, help="length of each run")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()

    rows = []
    for n in args.actors:
        config = load_config(
            args.config, [*args.overrides, f"actors.num_actors={n}", "dashboard.enabled=false"]
        )
        with tempfile.TemporaryDirectory() as tmp:
            summary = run_job(config, Path(tmp) / "run", args.seconds / 60, progress_every_s=5.0)
        rss = [a["max_rss_mb"] for a in summary.actors if "max_rss_mb" in a]
        rows.append(
            {
                "actors": n,
                "env_steps_per_s": summary.throughput.get("env_steps_per_s", 0.0),
                "learner_steps_per_s": summary.throughput.get("learner_steps_per_s", 0.0),
                "gradient_steps_per_s": summary.throughput.get("gradient_steps_per_s", 0.0),
                "window_seconds": summary.throughput.get("window_seconds"),
                "actor_max_rss_mb": round(max(rss), 1) if rss else None,
            }
        )
    base = rows[0]["env_steps_per_s"] / rows[0]["actors"] if rows[0]["env_steps_per_s"] else 0.0
    for row in rows:
        ideal = base * row["actors"]
        row["scaling_efficiency"] = round(row["env_steps_per_s"] / ideal, 3) if ideal else None
        # Off-policy jobs: transitions sampled per env step trained, against the config's
        # algorithm.replay_ratio.
        batch = getattr(config.algorithm, "batch_size", None)
        if batch and row["gradient_steps_per_s"] and row["learner_steps_per_s"]:
            ratio = row["gradient_steps_per_s"] * batch / row["learner_steps_per_s"]
            row["replay_ratio_held"] = round(ratio, 2)
    result = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "envs_per_actor": load_config(args.config, args.overrides).actors.envs_per_actor,
        "rows": rows,
    }
    print(
        f"{'actors':>6} {'env steps/s':>12} {'learner/s':>10} {'grad/s':>7} {'eff.':>6} "
        f"{'RSS MB':>7}",
        file=sys.stderr,
    )
    for r in rows:
        print(
            f"{r['actors']:>6} {r['env_steps_per_s']:>12,.0f} {r['learner_steps_per_s']:>10,.0f} "
            f"{r['gradient_steps_per_s']:>7,.1f} {r['scaling_efficiency'] or 0:>6.2f} "
            f"{r['actor_max_rss_mb'] or 0:>7.0f}",
            file=sys.stderr,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
