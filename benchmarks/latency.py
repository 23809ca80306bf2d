"""Weight adoption latency and policy lag, measured in a real local job.

    .venv/bin/python benchmarks/latency.py --config configs/connect_four.yaml --seconds 60 \\
        --polls default 0.01

Runs `selfplay run` (cluster.launcher.run_job: embedded Redis, in-process league, local
Ray, the learner and the rollout actors as Ray actors) for `--seconds`, once per weight
poll interval in `--polls` ("default" = the config's `actors.weight_poll_seconds`, shipped
0.05 s; other values go in as `--set actors.weight_poll_seconds=...`), and reports:

(a) weight adoption latency: per actor, the delays from the learner publishing version v
    (`published_unix`, stamped in the payload's metadata just before it is encoded and
    written to Redis) to the actor's PolicyPool having loaded v, which it then acts with
    from its next vector step (actors/policies.py `adopt_times_s`, surfaced as
    `weight_adoption` in the actors' run() result; the start-up adoption is left out).
    The delay includes the wait for the actor's next poll, which happens at most once
    per vector step, so a step longer than the poll interval lengthens it; versions
    published and superseded between two polls are never acted with and are counted as
    `versions_skipped` (they have no delay of their own). Percentiles are over each
    actor's last 1000 adoptions; with several actors the worst actor's are reported.
(b) policy lag of what the learner trained on, learner version at training time minus
    the behaviour version, as histograms over the whole run: per trained step, each
    step's own behaviour version (learner `step_lag_histogram`, Sample Factory's
    per-sample lag; the target is read on this one), and per chunk, its oldest step's
    (`lag_histogram`, an upper bound: a chunk's steps span the versions published while
    it filled), each with median, p90 and max; chunks dropped for lag (over
    `transport.max_policy_lag`) are not in it and are reported beside it, as are the
    versions published (`versions_per_s_incl_startup` divides them by the whole run,
    start-up included) and the steady-state learner steps/s.

Targets (performance issue): adoption p99 < 100 ms on one machine; median policy lag <= 1
version at default settings. The dashboard is turned off (`dashboard.enabled=false`);
nothing else is changed. Prints one JSON object on stdout and a readable table on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import load_config  # noqa: E402

TARGET_ADOPT_P99_MS = 100.0
TARGET_LAG_MEDIAN = 1.0


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) by nearest rank: the smallest value with at least a
    share q of the values at or below it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def histogram_quantile(histogram: Mapping[int | str, int], q: float) -> int | None:
    """The nearest-rank q-quantile of a value -> count histogram (keys may be strings,
    as after a JSON round trip); None when it is empty."""
    items = sorted((int(k), int(n)) for k, n in histogram.items() if int(n) > 0)
    total = sum(n for _, n in items)
    if not total:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for value, n in items:
        seen += n
        if seen >= rank:
            return value
    return items[-1][0]


def lag_summary(histogram: Mapping[int | str, int]) -> dict[str, Any]:
    """Count, median, p90, max, mean and the share at lag <= 1 of a lag histogram (of
    chunks or of steps)."""
    counts = {int(k): int(n) for k, n in histogram.items() if int(n) > 0}
    total = sum(counts.values())
    return {
        "count": total,
        "median": histogram_quantile(counts, 0.5),
        "p90": histogram_quantile(counts, 0.9),
        "max": max(counts) if counts else None,
        "mean": round(sum(k * n for k, n in counts.items()) / total, 3) if total else None,
        "share_le_1": round(sum(n for k, n in counts.items() if k <= 1) / total, 4)
        if total
        else None,
        "histogram": {str(k): counts[k] for k in sorted(counts)},
    }


def _by_lineage(value: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    """A run summary's learner/stream part: one lineage's dict, or lineage -> dict."""
    if key in value:
        return {"main": value}
    return {k: v for k, v in value.items() if isinstance(v, Mapping)}


def summarize(summary: Mapping[str, Any], poll_s: float) -> dict[str, Any]:
    """The latency figures of one run from its summary (RunSummary fields as a dict)."""
    actors = []
    worst: dict[str, float | None] = {"p50_ms": None, "p99_ms": None, "max_ms": None}
    adoptions = skipped = 0
    for actor in summary["actors"]:
        for lineage, st in actor.get("weight_adoption", {}).items():
            actors.append({"actor_id": actor.get("actor_id"), "lineage": lineage, **st})
            adoptions += int(st.get("count") or 0)
            skipped += int(st.get("versions_skipped") or 0)
            for key in worst:
                if st.get(key) is not None:
                    worst[key] = max(worst[key] or 0.0, float(st[key]))
    learners = _by_lineage(summary["learner"], "lag_histogram")
    streams = _by_lineage(summary["stream"], "chunks_added")
    lags = {}
    for lineage, st in learners.items():
        seconds = float(summary.get("seconds") or 0.0)
        lags[lineage] = {
            **lag_summary(st.get("lag_histogram", {})),
            "per_step": lag_summary(st.get("step_lag_histogram", {})),
            "chunks_dropped_lag": int(streams.get(lineage, {}).get("chunks_dropped_lag", 0)),
            "versions": int(st.get("version", 0)),
            "versions_per_s_incl_startup": round(int(st.get("version", 0)) / seconds, 2)
            if seconds
            else None,
        }
    step_lags = [v["per_step"] for v in lags.values()]
    medians = [lag["median"] for lag in step_lags if lag["median"] is not None]
    p99 = worst["p99_ms"]
    return {
        "weight_poll_seconds": poll_s,
        "seconds": round(float(summary.get("seconds") or 0.0), 1),
        "throughput": dict(summary.get("throughput", {})),
        "adoption": {
            "adoptions": adoptions,
            "versions_skipped": skipped,
            "worst_actor_p50_ms": worst["p50_ms"],
            "worst_actor_p99_ms": p99,
            "worst_actor_max_ms": worst["max_ms"],
            "meets_p99_target": None if p99 is None else p99 < TARGET_ADOPT_P99_MS,
            "per_actor": actors,
        },
        "policy_lag": lags,
        "meets_lag_target": (max(medians) <= TARGET_LAG_MEDIAN) if medians else None,
    }


def measure(config_path: str, seconds: float, overrides: list[str]) -> dict[str, Any]:
    """One local job of `seconds`; its summary reduced by `summarize`."""
    from dataclasses import asdict

    from cluster.launcher import run_job

    sets = ["dashboard.enabled=false", *overrides]
    config = load_config(config_path, sets)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_job(config, Path(tmp) / "run", seconds / 60, progress_every_s=5.0)
    result = summarize(asdict(summary), config.actors.weight_poll_seconds)
    result["overrides"] = sets
    return result


def print_table(runs: list[dict[str, Any]]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f}"

    print(
        f"\n{'poll s':>7}{'adoptions':>10}{'skipped':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'step lag med':>13}{'p90':>5}{'<=1':>7}{'chunk lag med':>14}{'p90':>5}{'max':>5}"
        f"{'dropped':>8}{'ver/s':>7}{'steps/s':>9}",
        file=sys.stderr,
    )
    for run in runs:
        a = run["adoption"]
        for lineage, lag in run["policy_lag"].items():
            name = "" if len(run["policy_lag"]) == 1 else f"  {lineage}"
            step = lag["per_step"]
            share = "-" if step["share_le_1"] is None else f"{step['share_le_1']:.0%}"
            print(
                f"{run['weight_poll_seconds']:>7}{a['adoptions']:>10}{a['versions_skipped']:>9}"
                f"{ms(a['worst_actor_p50_ms']):>9}{ms(a['worst_actor_p99_ms']):>9}"
                f"{ms(a['worst_actor_max_ms']):>9}{str(step['median']):>13}{str(step['p90']):>5}"
                f"{share:>7}{str(lag['median']):>14}{str(lag['p90']):>5}"
                f"{str(lag['max']):>5}{lag['chunks_dropped_lag']:>8}"
                f"{str(lag['versions_per_s_incl_startup']):>7}"
                f"{run['throughput'].get('learner_steps_per_s', 0):>9,.0f}{name}",
                file=sys.stderr,
            )
            print(f"{'':>7}per step (versions: steps) {step['histogram']}", file=sys.stderr)
            print(f"{'':>7}per chunk (versions: chunks) {lag['histogram']}", file=sys.stderr)
        if a["adoptions"] < 30:
            print(
                f"{'':>7}only {a['adoptions']} adoptions: too few for a p99 (start-up counts "
                "against --seconds; run longer)",
                file=sys.stderr,
            )
    print(
        f"targets: adoption p99 < {TARGET_ADOPT_P99_MS:.0f} ms; median policy lag per step <= "
        f"{TARGET_LAG_MEDIAN:.0f} version (default settings)",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/connect_four.yaml")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each job")
    parser.add_argument(
        "--polls",
        nargs="+",
        default=["default", "0.01"],
        help="actors.weight_poll_seconds per job; 'default' keeps the config's",
    )
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args(argv)
    runs = []
    for poll in args.polls:
        extra = [] if poll == "default" else [f"actors.weight_poll_seconds={float(poll)}"]
        runs.append(measure(args.config, args.seconds, [*args.overrides, *extra]))
    config = load_config(args.config, args.overrides)
    result = {
        "config": args.config,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "actors": config.actors.num_actors,
        "envs_per_actor": config.actors.envs_per_actor,
        "configured_weight_poll_seconds": config.actors.weight_poll_seconds,
        "publish_every": config.algorithm.publish_every,
        "batch_chunks": config.algorithm.batch_chunks,
        "max_policy_lag": config.transport.max_policy_lag,
        "runs": runs,
    }
    print_table(runs)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
