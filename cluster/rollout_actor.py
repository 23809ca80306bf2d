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

from actors.goal_rollout import GoalWorker
from actors.inference import limit_inference_threads
from actors.league_link import LeagueLink
from actors.policies import PolicyPool
from actors.rollout import RolloutWorker, new_actor_id
from actors.vector_rollout import make_rollout_worker
from core.config import JobConfig
from envs.goal import goal_task
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
        store = WeightStore(client, config.job, config.transport.keep_weight_versions)
        self.link: LeagueLink | None = None
        self.worker: RolloutWorker | GoalWorker
        if goal_task(config.env.name) is not None:
            # A short retry window: the actor steps while it reports (actors/goal_rollout.py).
            league = LeagueClient(league_address, league_token, retry_s=2.0)
            self.worker = _goal_worker(config, self.actor_id, store, client, league, index, seed)
        else:
            self.link = LeagueLink(
                LeagueClient(league_address, league_token),
                list(config.learners()),
                prefetch=config.actors.envs_per_actor,
                teams=bool(config.env.teams),
            )
            self.worker = _self_play_worker(config, self.actor_id, store, client, self.link, seed)
        self._stop = threading.Event()

    def run(self, wait_for_weights_s: float = 120.0) -> dict[str, Any]:
        for pool in self.worker.pools.values():
            pool.wait_for_learner(wait_for_weights_s)
        try:
            stats = self.worker.run(self._stop.is_set)
        finally:
            if self.link is not None:
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


def _self_play_worker(
    config: JobConfig,
    actor_id: str,
    store: WeightStore,
    client: Any,
    link: LeagueLink,
    seed: int,
) -> RolloutWorker:
    teams = Game(config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()).teams
    pools, streams = {}, {}
    for lineage, learning in config.learners().items():
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
        streams[lineage] = TrajectoryStream(
            client, config.stream_name(lineage), config.transport.max_stream_length
        )
    return make_rollout_worker(config, actor_id, pools, streams, link, seed=seed)


def _goal_worker(
    config: JobConfig,
    actor_id: str,
    store: WeightStore,
    client: Any,
    league: LeagueClient,
    index: int,
    seed: int,
) -> GoalWorker:
    """A goal job's worker (HER), exploring as its algorithm says for this actor and
    recording its evaluation episodes in the league."""
    exploration = config.algorithm.actor_exploration(index, config.actors.num_actors)
    lineage = config.league.learner_player
    stream = TrajectoryStream(
        client, config.stream_name(lineage), config.transport.max_stream_length
    )
    return GoalWorker(
        config, actor_id, store, stream, seed=seed, exploration=exploration, league=league
    )
