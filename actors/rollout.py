"""The rollout worker: a vector of games, batched inference, league matchmaking,
fixed-length chunks to the trajectory stream.

It is a plain class (Acme's `Actor` shape: it needs weights, a league and a sink) so
it runs the same inside a Ray actor, a test, or a benchmark, and it is made of parts:
the episodes (actors/episodes.py: who plays each episode, chunk tracks, results), a
stepper that moves the games (`GameStepper` below, one PettingZoo env per game, or the
batched `VectorStepper` of actors/vector_rollout.py) and the lineup (actors/players.py:
who acts for each seat). `make_rollout_worker` picks the stepper.

Per vector step every game says which agents must act; their observations are grouped
by the seat that plays them (the learner, one snapshot, a bot) so each player acts once
per step on a batch. The learner's decisions become training data, per trained agent: a
transition is closed when the learner is asked to act again for that agent (its reward
is everything the agent received in between) or when the game ends. In games against its
latest self, the learner plays every seat, and every seat's decisions are trained on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from actors.episodes import Episodes, Slot
from actors.league_link import LeagueLink
from actors.players import LEARNER, Batch, Lineup, Seat
from actors.policies import PolicyPool
from actors.rollout_stats import RolloutStats
from core.config import JobConfig
from envs.pettingzoo_adapter import Game
from transport.streams import TrajectoryStream

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class Stepper(Protocol):
    """Moves a worker's games one decision forward for every agent that must act."""

    games: list[Any]  # one per slot, as the episodes see them

    def step(self, episodes: Episodes, lineup: Lineup) -> None: ...


@dataclass
class _Pending:
    """A trained agent's open decision: its chunk row (values in the track's
    `step_names` order; reward and done come when it closes) and the reward it has
    received since."""

    row: list[Any]
    reward: float = 0.0
    state: np.ndarray | None = None  # a recurrent policy's, before the decision


class GameStepper:
    """One PettingZoo env per game: observations, moves and rewards through per-agent
    dicts (`Game`, envs/pettingzoo_adapter.py). Works for any game."""

    def __init__(self, config: JobConfig, rng: np.random.Generator, count: int) -> None:
        env = config.env
        self.games: list[Any] = [
            Game(env.name, env.api, env.kwargs, config.team_prefixes()) for _ in range(count)
        ]
        self.rng = rng
        self.pending: dict[tuple[int, str], _Pending] = {}  # (slot, agent) -> open decision
        self._positions: dict[str, dict[str, int]] = {}  # lineage -> chunk field -> row index
        # A recurrent policy's state per (slot, agent) this episode (absent: zeros).
        self._state_dim = 2 * config.model.lstm
        self._state: dict[tuple[int, str], np.ndarray] = {}

    def step(self, episodes: Episodes, lineup: Lineup) -> None:
        rows_of: dict[Seat, list[tuple[Slot, str, np.ndarray, np.ndarray | None]]] = {}
        for slot in episodes.slots:
            if slot.game.done:
                episodes.start(slot)
                for agent in slot.game.agents:
                    self._state.pop((slot.index, agent), None)
            for agent in slot.game.to_act():
                obs, mask = slot.game.observe(agent)
                rows_of.setdefault(slot.seats[agent], []).append((slot, agent, obs, mask))

        actions: dict[int, dict[str, int | np.ndarray]] = {}
        for seat, rows in rows_of.items():
            lineage, key = seat
            spec = episodes.specs[lineage]
            obs = np.stack([r[2] for r in rows])
            masks = None if rows[0][3] is None else np.stack([r[3] for r in rows])
            games, agents = [r[0].game for r in rows], [r[1] for r in rows]
            state = self._states_of(rows)
            batch = Batch(obs, masks, self.rng, spec, games, agents, state=state)
            decision = lineup.player(seat).act(batch)
            if state is not None and decision.state is not None:
                for j, (slot, agent, _, _) in enumerate(rows):
                    self._state[(slot.index, agent)] = decision.state[j]
            version = episodes.pools[lineage].learner_version
            at = self._positions.get(lineage)
            if at is None:
                names = episodes.step_names[lineage]
                at = self._positions[lineage] = {name: i for i, name in enumerate(names)}
            stored = [(at[name], values) for name, values in decision.stored.items()]
            for j, (slot, agent, o, m) in enumerate(rows):
                a = decision.actions[j] if spec.continuous else int(decision.actions[j])
                actions.setdefault(id(slot), {})[agent] = a
                if key == LEARNER and agent in slot.trained:
                    if (slot.index, agent) in self.pending:
                        self._close(episodes, slot, agent, next_obs=o)
                    row: list[Any] = [None] * len(at)
                    row[at["obs"]], row[at["actions"]] = o, a
                    row[at["policy_versions"]] = version
                    if m is not None:
                        row[at["action_mask"]] = m
                    for i, values in stored:
                        row[i] = values[j]
                    before = None if state is None else state[j]
                    self.pending[(slot.index, agent)] = _Pending(row, state=before)
                    slot.decisions[agent] += 1

        for slot in episodes.slots:
            chosen = actions.get(id(slot))
            if not chosen:
                continue
            rewards = slot.game.step(chosen)
            slot.steps += len(chosen)
            episodes.stats.env_steps += len(chosen)
            for agent in slot.trained:
                slot.returns[agent] += rewards[agent]
                pending = self.pending.get((slot.index, agent))
                if pending is not None:
                    pending.reward += rewards[agent]
            if slot.game.done:
                for agent in slot.trained:
                    if (slot.index, agent) in self.pending:
                        self._close(episodes, slot, agent, next_obs=None)
                episodes.finish(slot)

    def _close(
        self, episodes: Episodes, slot: Slot, agent: str, next_obs: np.ndarray | None
    ) -> None:
        pending = self.pending.pop((slot.index, agent))
        row, at = pending.row, self._positions[slot.seats[agent][0]]
        row[at["rewards"]], row[at["dones"]] = pending.reward, next_obs is None
        episodes.record(slot, agent, row, next_obs, pending.state)

    def _states_of(self, rows: list[tuple[Slot, str, Any, Any]]) -> np.ndarray | None:
        """The recurrent state each row's agent starts its decision from; None without."""
        if not self._state_dim:
            return None
        zeros = np.zeros(self._state_dim, np.float32)
        return np.stack([self._state.get((slot.index, agent), zeros) for slot, agent, *_ in rows])


class RolloutWorker:
    """`pools`/`streams`: one per learning lineage (config.learners(): the main agent and
    any exploiters; per team, keyed by team name, for team games). `stepper`: the class
    that moves the games (`GameStepper` unless `make_rollout_worker` picks another)."""

    def __init__(
        self,
        config: JobConfig,
        actor_id: str,
        pools: PolicyPool | Mapping[str, PolicyPool],
        streams: TrajectoryStream | Mapping[str, TrajectoryStream],
        league: LeagueLink,
        seed: int = 0,
        stepper: Callable[[JobConfig, np.random.Generator, int], Stepper] = GameStepper,
    ):
        self.config, self.actor_id, self.league = config, actor_id, league
        self.lineages = list(config.learners())
        self.pools = _by_lineage(pools, self.lineages)
        self.streams = _by_lineage(streams, self.lineages)
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.stats = RolloutStats.for_lineages(self.lineages, league.counts)
        self.stepper = stepper(config, self.rng, config.actors.envs_per_actor)
        self.episodes = Episodes(
            config, actor_id, self.stepper.games, self.pools, league, self.rng, self.stats
        )
        self.lineup = Lineup(self.pools, self.torch_gen)
        self._next_poll = self._next_flush = 0.0

    @property
    def pool(self) -> PolicyPool:
        """The policy pool of a single-lineage job."""
        (pool,) = self.pools.values()
        return pool

    def step(self) -> None:
        """One decision for every agent that must act in every game."""
        self.stepper.step(self.episodes, self.lineup)

    def flush(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Sends finished chunks, one round trip per stream; blocks under back-pressure."""
        for lineage, outbox in self.episodes.outbox.items():
            if not outbox:
                continue
            ids = self.streams[lineage].add(outbox, should_stop=should_stop)
            # An add abandoned because we are stopping sends nothing; say so.
            if len(ids) != len(outbox):
                log.info("stopping: %d finished chunks not sent", len(outbox))
            self.stats.chunks_sent += len(ids)
            self.episodes.outbox[lineage] = []

    def maybe_refresh_weights(self, now: float) -> None:
        if now >= self._next_poll:
            self._next_poll = now + self.config.actors.weight_poll_seconds
            for pool in self.pools.values():
                if pool.refresh_learner():
                    self.stats.weight_updates += 1

    def flush_due(self, now: float) -> bool:
        """Time to write (`actors.flush_seconds` since the last), or an outbox holds a
        quarter of its stream's room (one write must fit the stream)."""
        return now >= self._next_flush or any(
            len(outbox) * 4 >= self.streams[lineage].max_length
            for lineage, outbox in self.episodes.outbox.items()
        )

    def run(self, should_stop: Callable[[], bool], max_steps: int | None = None) -> RolloutStats:
        """Plays until should_stop() (or max_steps vector steps); sends every full chunk,
        the last ones on the way out."""
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            now = time.monotonic()
            self.maybe_refresh_weights(now)
            self.step()
            if self.flush_due(now):
                self.flush(should_stop)
                self._next_flush = now + self.config.actors.flush_seconds
            steps += 1
        self.flush(should_stop)
        return self.stats


def _by_lineage(value: _T | Mapping[str, _T], lineages: list[str]) -> dict[str, _T]:
    if isinstance(value, Mapping):
        if sorted(value) != sorted(lineages):
            raise ValueError(f"expected one entry per lineage {lineages}, got {sorted(value)}")
        return dict(value)
    if len(lineages) != 1:
        raise ValueError(f"a team game needs one entry per lineage {lineages}")
    return {lineages[0]: value}


def new_actor_id(index: int) -> str:
    return f"actor{index}-{uuid.uuid4().hex[:8]}"
