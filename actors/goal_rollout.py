"""The rollout worker of goal jobs (HER): one agent per game, a goal per episode, no
opponent. It steps a goal task's vector env (envs/goal), acts with the learner's latest
weights and the actor's own exploration, and sends each training episode as one chunk
(chunk_length = the task's time limit, so a chunk is exactly an episode and the learner's
replay can relabel its goals). A share of episodes (`league.eval_fraction`) is played
greedily and only counted: the success rate the job reports. The league records each of
them (its weights' version and the steps their learner had trained), which the dashboard
plots as success against steps.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from actors.chunking import ChunkBuilder
from actors.league_link import ReportCounts
from actors.players import LEARNER, Batch, Lineup
from actors.policies import PolicyPool
from actors.rollout_stats import RolloutStats
from core.chunks import job_chunk_spec
from core.codec import encode_chunk
from core.config import JobConfig
from core.league_protocol import EvaluationReport, GoalLeague, LeagueError
from core.spaces import PolicyShape
from envs.goal import GoalObs, GoalVectorEnv, goal_task
from envs.pettingzoo_adapter import GameSpec
from envs.randomization import randomized
from transport.streams import TrajectoryStream
from transport.weights import WeightStore

log = logging.getLogger(__name__)

REPORT_SECONDS = 2.0  # how often evaluation episodes go to the league
# After the league did not answer: the call blocks this actor's stepping (for its client's
# retry window), so try again only this much later.
REPORT_RETRY_SECONDS = 30.0
REPORT_BATCH = 1024  # the most one ReportEvaluations call carries (league/rpc.py MAX_BATCH)
MAX_PENDING_EVALUATIONS = 100_000  # kept while the league is away; the oldest go first


@dataclass
class GoalStats(RolloutStats):
    """A self-play worker's counts (the job's watcher sums them alike: an episode's return
    is its rewards, its length its steps) plus the goal task's successes."""

    successes: int = 0  # training episodes that ended on the goal
    eval_episodes: int = 0  # greedy episodes, not trained on
    eval_successes: int = 0


class GoalWorker:
    """`exploration`: this actor's own (AlgorithmConfig.actor_exploration)."""

    def __init__(
        self,
        config: JobConfig,
        actor_id: str,
        store: WeightStore,
        stream: TrajectoryStream,
        seed: int = 0,
        exploration: Mapping[str, float] | None = None,
        league: GoalLeague | None = None,
    ) -> None:
        task = goal_task(config.env.name)
        if task is None:
            raise ValueError(f"{config.env.name} is no goal task (goal_env, compute_reward)")
        self.config, self.actor_id, self.stream = config, actor_id, stream
        self.rng = np.random.default_rng(seed)
        n = config.actors.envs_per_actor
        kwargs = dict(config.env.kwargs)
        self.env: GoalVectorEnv = task.make(n, seed=int(self.rng.integers(2**31)), **kwargs)
        randomization = config.env.randomization
        if randomization is not None:  # sim2real: new physics every episode, recorded
            self.env = randomized(self.env, randomization.train, int(self.rng.integers(2**31)))
        self._records_dynamics = randomization is not None and bool(randomization.train.ranges())
        if config.actors.chunk_length != self.env.max_steps:
            raise ValueError(
                f"actors.chunk_length must be the task's episode length {self.env.max_steps} "
                "(one chunk per episode, for hindsight relabelling)"
            )
        env = self.env
        self.shape = PolicyShape(env.obs_dim, env.num_actions, env.continuous, env.goal_dim)
        lineage = config.league.learner_player
        self.pool = PolicyPool(
            store,
            lineage,
            config.model,
            env.obs_dim,
            env.num_actions,
            env.continuous,
            acting=config.algorithm.acting,
            exploration=exploration,
            goal_dim=env.goal_dim,
        )
        self.pools = {lineage: self.pool}
        input_dim, actions = self.shape.input_dim, env.num_actions
        self.spec = GameSpec(("agent",), input_dim, actions, False, False, env.continuous)
        chunk_spec = job_chunk_spec(config, self.shape)
        stream_name = config.stream_name(lineage)
        self.tracks = [ChunkBuilder(chunk_spec, stream_name, actor_id, g) for g in range(n)]
        self.lineup = Lineup(self.pools, torch.Generator().manual_seed(seed))
        self.stats = GoalStats.for_lineages([lineage], ReportCounts())
        self._outbox: list[bytes] = []
        self._obs: GoalObs | None = None
        self._evaluating = np.zeros(n, bool)  # games playing a greedy episode
        # A recurrent policy's state per game (zeros at each episode's start), and each
        # track's at its chunk's first step (the chunk carries it).
        state_dim = 2 * config.model.lstm
        self._state = np.zeros((n, state_dim), np.float32) if state_dim else None
        self._chunk_state = np.zeros((n, state_dim), np.float32)
        self._returns = np.zeros(n)  # training episodes' rewards so far
        self._next_poll = self._next_flush = self._next_report = 0.0
        self.league = league
        # Evaluation episodes not yet recorded by the league (kept while it is away).
        self._evaluations: list[EvaluationReport] = []
        self._episode_prefix = re.sub(r"[^A-Za-z0-9_-]", "_", actor_id)[:100]

    def _new_episodes(self, games: np.ndarray) -> None:
        self._evaluating[games] = self.rng.random(len(games)) < self.config.league.eval_fraction

    def step(self) -> None:
        env = self.env
        if self._obs is None:
            self._obs = env.reset()
            self._new_episodes(np.arange(env.num_envs))
        obs = self._obs
        inputs = np.concatenate([obs.observation, obs.desired_goal], axis=1)
        player = self.lineup.player((self.pool.lineage, LEARNER))
        state = self._state
        decision = player.act(Batch(inputs, None, self.rng, self.spec, (), (), state=state))
        actions = decision.actions
        evaluating = np.flatnonzero(self._evaluating)
        if len(evaluating):  # greedy for the games that evaluate
            rows = None if state is None else state[evaluating]
            greedy = Batch(
                inputs[evaluating], None, self.rng, self.spec, (), (), greedy=True, state=rows
            )
            actions[evaluating] = player.act(greedy).actions  # the same next state
        next_obs, rewards, terminated, truncated, info = env.step(actions)
        self.stats.env_steps += env.num_envs
        final = env.final_obs  # before any restart: what each game reached this step
        version = self.pool.learner_version
        dynamics = env.final_dynamics if self._records_dynamics else None
        for g in np.flatnonzero(~self._evaluating):
            if state is not None and self.tracks[g].empty:
                self._chunk_state[g] = state[g]
            self.tracks[g].add(
                {
                    "obs": obs.observation[g],
                    "actions": actions[g],
                    "rewards": rewards[g],
                    "dones": terminated[g],
                    "policy_versions": version,
                    "desired_goal": obs.desired_goal[g],
                    "achieved_goal": final.achieved_goal[g],
                    "is_success": info["is_success"][g],
                    "dynamics": None if dynamics is None else dynamics[g],
                }
            )
            self.stats.learner_steps += 1
        self._returns += rewards
        ended = np.flatnonzero(terminated | truncated)
        for g in ended:
            success = bool(info["is_success"][g])
            if self._evaluating[g]:
                self.stats.eval_episodes += 1
                self.stats.eval_successes += success
                self._note_evaluation(success)
                continue
            self.stats.tally_episode(self.pool.lineage, float(self._returns[g]), env.max_steps)
            self.stats.successes += success
            track = self.tracks[g]
            if track.full:
                per_chunk = {} if state is None else {"recurrent_state": self._chunk_state[g]}
                self._outbox.append(encode_chunk(track.take(final.observation[g], **per_chunk)))
        if decision.state is not None:
            self._state = decision.state
            self._state[ended] = 0.0  # a new episode starts from scratch
        if len(ended):
            self._returns[ended] = 0.0
            self._new_episodes(ended)
        self._obs = next_obs

    def _note_evaluation(self, success: bool) -> None:
        """Queues an evaluation episode for the league, tagged with the weights that
        finished it and the steps their learner had trained (the curve's x axis)."""
        if self.league is None:
            return
        meta = self.pool.learner_meta
        self._evaluations.append(
            EvaluationReport(
                episode_id=f"{self._episode_prefix}-e{self.stats.eval_episodes}",
                player=self.pool.lineage,
                version=self.pool.learner_version,
                steps_trained=int(meta.get("steps_trained", 0)),
                success=success,
            )
        )
        del self._evaluations[:-MAX_PENDING_EVALUATIONS]

    def report_evaluations(self) -> bool:
        """Sends the queued evaluation episodes (idempotent by id: a retry after a lost
        reply records nothing twice); a league that does not answer keeps them queued
        (False)."""
        while self.league is not None and self._evaluations:
            batch = self._evaluations[:REPORT_BATCH]
            try:
                self.league.report_evaluations(batch)
            except LeagueError as exc:
                log.warning("league did not take %d evaluation episodes: %s", len(batch), exc)
                return False
            del self._evaluations[: len(batch)]
        return True

    def flush(self, should_stop: Callable[[], bool] | None = None) -> None:
        if self._outbox:
            ids = self.stream.add(self._outbox, should_stop=should_stop)
            self.stats.chunks_sent += len(ids)
            self._outbox = []

    def maybe_refresh_weights(self, now: float) -> None:
        if now >= self._next_poll:
            self._next_poll = now + self.config.actors.weight_poll_seconds
            if self.pool.refresh_learner():
                self.stats.weight_updates += 1

    def run(self, should_stop: Callable[[], bool], max_steps: int | None = None) -> GoalStats:
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            now = time.monotonic()
            self.maybe_refresh_weights(now)
            self.step()
            if now >= self._next_flush:
                self.flush(should_stop)
                self._next_flush = now + self.config.actors.flush_seconds
            if now >= self._next_report:
                sent = self.report_evaluations()
                self._next_report = now + (REPORT_SECONDS if sent else REPORT_RETRY_SECONDS)
            steps += 1
        self.flush(should_stop)
        self.report_evaluations()
        return self.stats
