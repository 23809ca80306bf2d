"""The rollout worker as a Ray actor. Threaded (max_concurrency=2) so that `stop()` and
`stats()` are answered while `run()` plays."""

from __future__ import annotations

import logging
import os
import resource
import threading
from dataclasses import asdict
from typing import Any

import ray

from actors.inference import limit_inference_threads
from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import new_actor_id
from actors.vector_rollout import make_rollout_worker
from core.config import JobConfig
from envs.pettingzoo_adapter import Game
from league.client import LeagueClient
from transport.redis import RedisEndpoint, connect
from transport.streams import TrajectoryStream
from transport.weights import WeightStore


@ray.remote(max_concurrency=2)
class RolloutActor:
    def __init__(
        self,
        config_data: dict[str, Any],
        redis: RedisEndpoint,
        league_address: str,
        league_token: str | None,
        index: int,
        seed: int,
    ):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        config = JobConfig.model_validate(config_data)
        limit_inference_threads(config.actors.torch_threads)
        client = connect(redis)
        self.actor_id = new_actor_id(index)
        teams = Game(
            config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()
        ).teams
        learners = config.learners()
        store = WeightStore(client, config.job, config.transport.keep_weight_versions)
        pools = {}
        for lineage, learning in learners.items():
            spec = teams[learning.team]
            pools[lineage] = PolicyPool(
                store,
                lineage,
                config.model,
                spec.obs_dim,
                spec.num_actions,
                spec.continuous,
                acting=config.algorithm.acting,
            )
        streams = {
            lineage: TrajectoryStream(
                client, config.stream_name(lineage), config.transport.max_stream_length
            )
            for lineage in learners
        }
        self.link = LeagueLink(
            LeagueClient(league_address, league_token),
            list(learners),
            prefetch=config.actors.envs_per_actor,
            teams=bool(config.env.teams),
        )
        self.worker = make_rollout_worker(
            config, self.actor_id, pools, streams, self.link, seed=seed
        )
        self._stop = threading.Event()

    def run(self, wait_for_weights_s: float = 120.0) -> dict[str, Any]:
        for pool in self.worker.pools.values():
            pool.wait_for_learner(wait_for_weights_s)
        try:
            stats = self.worker.run(self._stop.is_set)
        finally:
            self.link.close()  # every finished game's result reaches the league
        return {**self._identity(), **asdict(stats), "weight_adoption": self._adoption()}

    def stop(self) -> None:
        self._stop.set()

    def _identity(self) -> dict[str, Any]:
        """Who and where: Ray restarts a dead actor in a fresh process (new actor id);
        `restarted` says this incarnation is such a restart."""
        context = ray.get_runtime_context()
        return {
            "actor_id": self.actor_id,
            "node_id": context.get_node_id(),
            "pid": os.getpid(),
            "restarted": context.was_current_actor_reconstructed,
            # Peak resident memory of this actor process (Linux reports KiB).
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

    def stats(self) -> dict[str, Any]:
        return {
            **self._identity(),
            "version": min(p.learner_version for p in self.worker.pools.values()),
            **asdict(self.worker.stats),
            "weight_adoption": self._adoption(),
        }

    def _adoption(self) -> dict[str, dict[str, Any]]:
        """Per lineage: publish -> adopt delays of the learner's weights (PolicyPool)."""
        return {lineage: pool.adoption_stats() for lineage, pool in self.worker.pools.items()}
