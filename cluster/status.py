"""RUN/status.json: the running job's latest progress sample.

`selfplay run`'s watcher (watcher.py) rewrites it every progress sample (15 s), so
anything outside the job can see how it is doing without Ray or Redis: the league
dashboard (league/dashboard.py) reads it, and so can `jq` or a later `selfplay status`.
It is replaced atomically (written to a temporary file, fsynced, `os.replace`d), so a
reader sees the previous sample or the new one, never half of one.

Fields (schema 1; rates are over the interval since the previous sample and null in the
first sample, which has no previous one):

| field | meaning |
|---|---|
| `schema` | 1; bumped when a field changes meaning |
| `state` | `running`; `stopped` after a clean stop, `failed` when the run ended on an error |
| `time` | unix seconds of this sample |
| `started_at` | unix seconds the run started watching (after start-up) |
| `stopped_at` | unix seconds the run ended (absent while running) |
| `interval_s` | seconds since the previous sample |
| `learner_version` | weight version of the learner furthest behind (the only one, without teams) |
| `steps_trained` | learner steps trained, all learners, counting resumed runs' earlier steps |
| `env_steps` | agent decisions played by this run's actors since it started |
| `env_steps_per_s` | env steps per second, all actors |
| `learner_steps_per_s` | steps the learners consumed from their streams per second |
| `policy_lag_median` | worst learner's median lag in versions over its last 1000 chunks |
| `stream_length` | chunks in the trajectory streams (unread plus pending) |
| `chunks_dropped_lag` | chunks dropped for policy lag so far (stream counters) |
| `chunks_rejected` | chunks rejected as malformed so far |
| `actors` | rollout actors started |
| `actors_alive` | actors that answered this sample's stats call |
| `league_players` | players in the league (learners, snapshots, builtins); null if it did not answer |
| `learners` | per lineage: `version`, `updates`, `steps_trained`, `gradient_steps` (optimizer steps, off-policy learners; 0 otherwise), `policy_lag_median`, `stream_length`, `chunks_dropped_lag`, `chunks_rejected`, `device`; `episodes` (its agents' finished training episodes, a game against its latest self counting each seat), `episode_return_mean` and `episode_length_mean` (return: every reward the env gave the agent, shaping included; length: its decisions) over the episodes finished in this interval, null if none |
| `eval_success_rate` | goal jobs (HER): the share of the greedy evaluation episodes finished in this interval that ended on their goal; null otherwise or if none finished (per learner too, with `eval_episodes`, the total so far) |
| `history` | the last 120 samples (30 min): `time`, `env_steps`, `env_steps_per_s`, `learner_steps_per_s`, `policy_lag_median`, `eval_success_rate` |
"""  # noqa: E501

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
SCHEMA = 1
HISTORY_SAMPLES = 120


def build_status(
    *,
    now: float,
    started_at: float,
    interval_s: float | None,
    learners: Mapping[str, Mapping[str, Any]],
    streams: Mapping[str, Mapping[str, int]],
    env_steps: int,
    env_steps_per_s: float | None,
    learner_steps_per_s: float | None,
    actors: int,
    actors_alive: int,
    history: Sequence[Mapping[str, Any]] = (),
    league_players: int | None = None,
    episodes: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The status document (fields in the module docstring) from one sample's raw stats:
    `learners` and `streams` are each learner's `stats()` and its stream's `stats()`,
    keyed by lineage; `history` holds earlier samples' `history_entry`s."""
    per_learner: dict[str, dict[str, Any]] = {}
    for lineage, st in learners.items():
        s = streams.get(lineage, {})
        per_learner[lineage] = {
            "version": int(st["version"]),
            "updates": int(st["updates"]),
            "steps_trained": int(st["steps_trained"]),
            "gradient_steps": int(st.get("gradient_steps", 0)),
            "policy_lag_median": st.get("lag_median"),
            "stream_length": int(s.get("length", 0)),
            "chunks_dropped_lag": int(s.get("chunks_dropped_lag", 0)),
            "chunks_rejected": int(s.get("chunks_rejected", 0)),
            "device": st.get("device"),
            "episodes": 0,
            "episode_return_mean": None,
            "episode_length_mean": None,
            **(episodes or {}).get(lineage, {}),
        }
    lags = [v["policy_lag_median"] for v in per_learner.values()]
    known_lags = [float(x) for x in lags if x is not None]
    return {
        "schema": SCHEMA,
        "state": "running",
        "time": now,
        "started_at": started_at,
        "interval_s": interval_s,
        "learner_version": min((v["version"] for v in per_learner.values()), default=0),
        "steps_trained": sum(v["steps_trained"] for v in per_learner.values()),
        "env_steps": int(env_steps),
        "env_steps_per_s": env_steps_per_s,
        "learner_steps_per_s": learner_steps_per_s,
        "policy_lag_median": max(known_lags) if known_lags else None,
        "eval_success_rate": next(
            (v["eval_success_rate"] for v in per_learner.values() if "eval_success_rate" in v),
            None,
        ),
        "stream_length": sum(v["stream_length"] for v in per_learner.values()),
        "chunks_dropped_lag": sum(v["chunks_dropped_lag"] for v in per_learner.values()),
        "chunks_rejected": sum(v["chunks_rejected"] for v in per_learner.values()),
        "actors": actors,
        "actors_alive": actors_alive,
        "league_players": league_players,
        "learners": per_learner,
        "history": [dict(h) for h in history],
    }


def history_entry(status: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a status document kept in later documents' `history`."""
    keys = (
        "time",
        "env_steps",
        "env_steps_per_s",
        "learner_steps_per_s",
        "policy_lag_median",
        "eval_success_rate",
    )
    return {k: status.get(k) for k in keys}


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    """Replaces `path` atomically: readers never see a partial document, and after a
    crash the file holds the old sample or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(status, allow_nan=False, separators=(",", ":")).encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_status(path: Path) -> dict[str, Any]:
    """The document at `path`; OSError when missing, ValueError when not a status."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a schema-{SCHEMA} status file")
    return data
