"""The job's status.json (cluster/status.py), as the dashboard reads it: the document, its
age and whether the job is live, and the job's gauges and counters for /metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from league.prometheus import Metric

STALE_STATUS_S = 60.0  # a status older than this is shown as not live (samples every 15 s)


class StatusReader:
    """The job's status.json (written atomically by the launcher), read on each call."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = None if path is None else Path(path)

    def read(self, now: float | None = None) -> dict[str, Any]:
        """{"status": the document or None, "age_s", "live", "error": why there is none}."""
        now = time.time() if now is None else now
        doc: dict[str, Any] = {"status": None, "age_s": None, "live": False, "error": None}
        if self.path is None:
            doc["error"] = "no job beside this league (standalone league service)"
            return doc
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            doc["error"] = f"no {self.path.name} (`selfplay run` writes one every 15 s)"
            return doc
        except (OSError, ValueError) as exc:
            doc["error"] = f"cannot read {self.path.name}: {exc}"
            return doc
        if not isinstance(data, dict) or not isinstance(data.get("time"), int | float):
            doc["error"] = f"{self.path.name} is not a job status file"
            return doc
        age = max(0.0, now - float(data["time"]))
        doc.update(
            status=data,
            age_s=round(age, 1),
            live=data.get("state") == "running" and age < STALE_STATUS_S,
        )
        return doc

    def metric_families(self) -> list[Metric]:
        if self.path is None:
            return []  # a standalone league: there is no job to report on
        read = self.read()
        status = read["status"]
        up = Metric(
            "selfplay_job_up", "gauge", "1 while the job's status file is fresh and running."
        )
        up.add(1 if read["live"] else 0)
        families = [up]
        if status is None:
            return families
        age = Metric("selfplay_job_status_age_seconds", "gauge", "Age of the job's last sample.")
        age.add(read["age_s"])
        families.append(age)
        for name, key, help_text in (
            ("selfplay_env_steps_per_second", "env_steps_per_s", "Env steps per second."),
            (
                "selfplay_learner_steps_per_second",
                "learner_steps_per_s",
                "Steps the learners consumed per second.",
            ),
            ("selfplay_actors_alive", "actors_alive", "Rollout actors that answered."),
            ("selfplay_stream_length", "stream_length", "Chunks waiting in the streams."),
        ):
            value = status.get(key)
            if isinstance(value, int | float):
                families.append(Metric(name, "gauge", help_text).add(value))
        version = Metric("selfplay_learner_version", "gauge", "Latest weight version.")
        lag = Metric(
            "selfplay_policy_lag_median", "gauge", "Median policy lag (versions), recent chunks."
        )
        trained = Metric("selfplay_steps_trained_total", "counter", "Learner steps trained.")
        dropped = Metric(
            "selfplay_chunks_dropped_lag_total", "counter", "Chunks dropped for policy lag."
        )
        returns = Metric(
            "selfplay_episode_return_mean",
            "gauge",
            "Mean return of the learner's training episodes finished in the last sample.",
        )
        episodes = Metric(
            "selfplay_episodes_total", "counter", "Training episodes finished (each trained seat)."
        )
        learners = status.get("learners")
        for lineage, st in (learners if isinstance(learners, dict) else {}).items():
            if not isinstance(st, dict):
                continue
            labels = {"learner": str(lineage)}
            for metric, key in (
                (version, "version"),
                (lag, "policy_lag_median"),
                (trained, "steps_trained"),
                (dropped, "chunks_dropped_lag"),
                (returns, "episode_return_mean"),
                (episodes, "episodes"),
            ):
                value = st.get(key)
                if isinstance(value, int | float):
                    metric.add(value, labels)
        per_learner = (version, lag, trained, dropped, returns, episodes)
        return families + [m for m in per_learner if m.samples]
