"""The learner as a Ray actor (asks for a GPU when the cluster has one). Threaded so that
`stop()` and `stats()` are answered while `run()` trains."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import ray

from core.config import JobConfig
from league.client import LeagueClient
from learner.learner import Learner
from transport.redis import RedisEndpoint, connect
from transport.streams import TrajectoryStream
from transport.weights import WeightStore


@ray.remote(max_concurrency=2)
class LearnerActor:
    def __init__(
        self,
        config_data: dict[str, Any],
        redis: RedisEndpoint,
        league_address: str,
        league_token: str | None,
        run_dir: str,
        obs_dim: int,
        num_actions: int,
        resume: bool,
        continuous: bool = False,
        lineage: str | None = None,
        goal_dim: int = 0,
    ):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        config = JobConfig.model_validate(config_data)
        client = connect(redis)
        lineage = lineage or config.league.learner_player
        self.learner = Learner(
            config,
            Path(run_dir),
            TrajectoryStream(
                client, config.stream_name(lineage), config.transport.max_stream_length
            ),
            WeightStore(client, config.job, config.transport.keep_weight_versions),
            LeagueClient(league_address, league_token),
            obs_dim,
            num_actions,
            resume=resume,
            continuous=continuous,
            lineage=lineage,
            goal_dim=goal_dim,
        )
        self._stop = threading.Event()

    def run(self) -> dict[str, Any]:
        counters = asdict(self.learner.run(self._stop.is_set))
        return {
            **counters,
            "lag_histogram": self.learner.lag_histogram(),
            "step_lag_histogram": self.learner.step_lag_histogram(),
        }

    def stop(self) -> None:
        self._stop.set()

    def stats(self) -> dict[str, Any]:
        lags = list(self.learner.lags)[-1000:]
        return {
            **asdict(self.learner.counters),
            "device": str(self.learner.device),
            "lag_median": float(np.median(lags)) if lags else None,
            "lag_histogram": self.learner.lag_histogram(),
            "step_lag_histogram": self.learner.step_lag_histogram(),
        }
