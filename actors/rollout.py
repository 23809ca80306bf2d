"""The rollout worker: a vector of games, batched CPU inference, league matchmaking,
fixed-length chunks to the trajectory stream.

It is a plain class (Acme's `Actor` shape: it needs weights, a league and a sink) so
it runs the same inside a Ray actor, a test, or a benchmark.

Per vector step every game says which agents must act; their observations are
grouped by the policy that plays them (the learner, one snapshot, the random
player) so each policy runs one batched forward pass per step. The learner's
decisions become training data, per (game, agent) "track": a transition is closed
when the learner is asked to act again for that agent (its reward is everything
the agent received in between) or when the game ends. In games against its latest
self, the learner plays every seat, and every seat's decisions are trained on.

Several learners share the actor, each with its own policy pool and trajectory stream:
- team games (config env.teams, e.g. predators against prey): one learner lineage per
  team. A training episode belongs to one team in turn: that team's learner plays it,
  the opponent team is played by whatever the league drew from the other lineage (its
  latest learner, whose decisions are then trained on too, one of its snapshots, or
  random);
- exploiters (league.main_exploiters / league_exploiters): every lineage plays the one
  team. The training episodes of a game go to the lineages in turn; the league picks
  each one's opponent by its role (a main exploiter's is the main agent's latest
  learner, trained on too, like a team game's opponent).
Chunk tracks follow the learner, not the seat or the game: each lineage has a pool of
tracks in the actor (`actors/chunking.py` `TrackPool`), and an agent it trains holds one
from the start of its episode, or from its last chunk boundary, to the end of the
episode or its next chunk boundary, taking the stalest part-filled idle track first.
Why: with a track per seat, or per (game, k-th trained agent), a part-filled chunk
waited through every episode that did not use its track (the learner alternates seats;
games against snapshots train one agent, games against the latest self two, eval games
none) and went stale: the bug job dropped 2% of its chunks for lag with per-seat
tracks and 0.75% with per-game tracks (`benchmarks/latency.py`, BENCHMARKS.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import torch

from actors.chunking import ChunkBuilder, TrackPool
from actors.inference import Policy
from actors.league_link import LeagueLink, Report
from actors.policies import BUILTIN_RANDOM, PolicyPool
from actors.rollout_stats import RolloutStats
from actors.scripted import SCRIPTED, scripted_action
from actors.seating import LEARNER, Seat, Seating, Side
from core.codec import encode_chunk
from core.config import JobConfig
from core.nets import random_legal_actions
from envs.pettingzoo_adapter import Game
from transport.streams import TrajectoryStream

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass
class _Pending:
    obs: np.ndarray
    mask: np.ndarray | None
    action: int | np.ndarray
    logp: float
    value: float
    version: int
    reward: float = 0.0


@dataclass
class _Track:
    """The learner's decisions for one agent of one game, chunk after chunk."""

    chunks: ChunkBuilder
    pending: _Pending | None = None


@dataclass
class _Slot:
    index: int  # position in the actor's vector
    game: Game
    seats: dict[str, Seat] = field(default_factory=dict)  # agent -> who plays it
    # trained agent -> the chunk track it fills now (taken from its lineage's TrackPool)
    track_of: dict[str, _Track] = field(default_factory=dict)
    trained: frozenset[str] = frozenset()  # agents whose decisions are training data
    owner: str = ""  # the lineage this training episode belongs to
    match_id: str = ""
    kind: str = "training"
    # (agents, player id) reported as sides a and b of the match
    side_a: Side = ((), "")
    side_b: Side = ((), "")
    steps: int = 0
    episodes: int = 0
    # trained agent -> its return (every reward it got) and decisions so far this episode
    returns: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, int] = field(default_factory=dict)


class RolloutWorker:
    """`pools`/`streams`: one per learning lineage (config.learners(): the main agent and
    any exploiters; per team, keyed by team name, for team games)."""

    def __init__(
        self,
        config: JobConfig,
        actor_id: str,
        pools: PolicyPool | Mapping[str, PolicyPool],
        streams: TrajectoryStream | Mapping[str, TrajectoryStream],
        league: LeagueLink,
        seed: int = 0,
    ):
        self.config, self.actor_id, self.league = config, actor_id, league
        learners = config.learners()
        self.lineages = list(learners)
        self.pools = _by_lineage(pools, self.lineages)
        self.streams = _by_lineage(streams, self.lineages)
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.stats = RolloutStats.for_lineages(self.lineages, league.counts)
        self._outbox: dict[str, list[bytes]] = {lineage: [] for lineage in self.lineages}
        env_cfg = config.env
        games = self._make_games(config.actors.envs_per_actor)
        self.slots = [self._new_slot(i, game) for i, game in enumerate(games)]
        self.tracks = self._make_tracks(games[0])
        first = self.slots[0].game
        self.agents, self.team_of = first.agents, first.team_of
        self.specs = {lineage: first.teams[learning.team] for lineage, learning in learners.items()}
        self.learner_agents = env_cfg.learner_agents or self.agents
        self._teams = bool(env_cfg.teams)
        self.seating = Seating(
            self.agents,
            self.lineages,
            self.team_of,
            {lineage: spec.agents for lineage, spec in self.specs.items()},
            self.learner_agents,
            self._teams,
            self.rng,
        )
        self._next_poll = self._next_flush = 0.0

    def _make_games(self, count: int) -> list[Game]:
        """The actor's games: one PettingZoo env each."""
        env_cfg = self.config.env
        return [
            Game(env_cfg.name, env_cfg.api, env_cfg.kwargs, self.config.team_prefixes())
            for _ in range(count)
        ]

    def _new_slot(self, i: int, game: Game) -> _Slot:
        return _Slot(index=i, game=game)

    def _make_tracks(self, game: Game) -> dict[str, TrackPool[_Track]]:
        """Per lineage, one chunk track per agent it can play in each game (its team's, in
        team games, or all): as many as its agents can hold at once."""
        config, pools, index = self.config, {}, 0
        for lineage, learning in config.learners().items():
            spec = game.teams[learning.team]
            tracks = []
            for _ in range(len(self.slots) * len(spec.agents)):
                # env_index numbers tracks, so (actor_id, env_index, sequence) is unique;
                # actor ids carry a fresh suffix per incarnation.
                builder = ChunkBuilder(
                    config.stream_name(lineage),
                    self.actor_id,
                    index,
                    spec.obs_dim,
                    spec.num_actions,
                    config.actors.chunk_length,
                    continuous=spec.continuous,
                )
                tracks.append(_Track(builder))
                index += 1
            pools[lineage] = TrackPool(tracks)
        return pools

    def _policy(self, pool: PolicyPool, key: str) -> Policy:
        """The learner's (key LEARNER) or a frozen player's policy for inference."""
        if key == LEARNER:
            return pool.learner_policy(self.torch_gen)
        return pool.frozen_policy(key, self.torch_gen)

    @property
    def pool(self) -> PolicyPool:
        """The policy pool of a single-lineage job."""
        (pool,) = self.pools.values()
        return pool

    # -- episodes ---------------------------------------------------------------
    def _start_episode(self, slot: _Slot) -> None:
        slot.episodes += 1
        slot.steps = 0
        match = None
        if self.rng.random() < self.config.league.eval_fraction:
            match = self.league.eval_match()  # None until two frozen players exist
        if match is not None:
            slot.owner = ""
            plan = self.seating.eval(match)
        else:
            # Lineages (teams, or the main agent and its exploiters) take turns owning
            # the training episodes of a slot; slots start at different turns.
            slot.owner = self.lineages[(slot.index + slot.episodes) % len(self.lineages)]
            match = self.league.training_match(slot.owner)
            plan = self.seating.training(slot.owner, match, slot.episodes)
        slot.seats, slot.side_a, slot.side_b = plan.seats, plan.side_a, plan.side_b
        slot.trained = frozenset(a for a, seat in slot.seats.items() if seat[1] == LEARNER)
        slot.returns = dict.fromkeys(slot.trained, 0.0)
        slot.decisions = dict.fromkeys(slot.trained, 0)
        slot.track_of = {
            agent: self.tracks[slot.seats[agent][0]].take()
            for agent in self.agents
            if agent in slot.trained
        }
        slot.match_id, slot.kind = match.match_id, match.kind
        slot.game.reset(seed=int(self.rng.integers(2**31)))

    def _finish_episode(self, slot: _Slot) -> None:
        for agent in slot.trained:
            if slot.track_of[agent].pending is not None:
                self._close_transition(slot, agent, done=True, next_obs=None)
        for agent, track in slot.track_of.items():
            self.tracks[slot.seats[agent][0]].give_back(track)
        slot.track_of = {}
        (agents_a, player_a), (agents_b, player_b) = slot.side_a, slot.side_b
        scoring = self.config.env.scoring_team
        if scoring is None or not self._teams:
            outcome = slot.game.team_outcome(agents_a, agents_b)
        else:
            scorer_is_a = self.team_of[agents_a[0]] == scoring
            outcome = slot.game.team_outcome(agents_a, agents_b, "a" if scorer_is_a else "b")
        lineage_a = slot.owner
        self.league.report(
            Report(
                slot.match_id,
                player_a,
                player_b,
                outcome,
                a_version=self.pools[lineage_a].learner_version if slot.kind == "training" else 0,
                kind=slot.kind,
                steps=slot.steps,
            )
        )
        self.stats.games += 1
        self.stats.eval_games += slot.kind == "eval"
        if slot.kind == "training":
            for agent in slot.trained:
                self.stats.tally_episode(
                    slot.seats[agent][0],
                    self._episode_return(slot, agent),
                    self._episode_decisions(slot, agent),
                )

    def _episode_return(self, slot: _Slot, agent: str) -> float:
        return slot.returns[agent]

    def _episode_decisions(self, slot: _Slot, agent: str) -> int:
        return slot.decisions[agent]

    # -- transitions ------------------------------------------------------------
    def _close_transition(
        self, slot: _Slot, agent: str, done: bool, next_obs: np.ndarray | None
    ) -> None:
        lineage = slot.seats[agent][0]
        track = slot.track_of[agent]
        p = track.pending
        assert p is not None
        track.chunks.add(p.obs, p.mask, p.action, p.logp, p.value, p.version, p.reward, done)
        track.pending = None
        self.stats.learner_steps += 1
        if track.chunks.full:
            # After a terminal step the bootstrap value is multiplied by 0 anyway.
            bootstrap = next_obs if next_obs is not None else np.zeros_like(p.obs)
            self._outbox[lineage].append(encode_chunk(track.chunks.take(bootstrap)))
            slot.track_of[agent] = self.tracks[lineage].after_chunk(track)

    # -- the vector step ----------------------------------------------------------
    def step(self) -> None:
        """One decision for every agent that must act in every game."""
        groups: dict[Seat, list[tuple[_Slot, str, np.ndarray, np.ndarray | None]]] = {}
        for slot in self.slots:
            if slot.game.done:
                self._start_episode(slot)
            for agent in slot.game.to_act():
                obs, mask = slot.game.observe(agent)
                groups.setdefault(slot.seats[agent], []).append((slot, agent, obs, mask))

        actions: dict[int, dict[str, int | np.ndarray]] = {}
        for (lineage, key), rows in groups.items():
            spec, pool = self.specs[lineage], self.pools[lineage]
            obs = np.stack([r[2] for r in rows])
            masks = None if rows[0][3] is None else np.stack([r[3] for r in rows])
            if key == BUILTIN_RANDOM:
                chosen = random_legal_actions(
                    masks, spec.num_actions, self.rng, len(rows), spec.continuous
                )
            elif key in SCRIPTED:
                chosen = [
                    scripted_action(key, s_.game, agent, o, self.rng) for s_, agent, o, _ in rows
                ]
            else:
                policy = self._policy(pool, key)
                chosen, logp, values = policy.act(obs, masks, self.rng)
            for j, (slot, agent, o, m) in enumerate(rows):
                a = chosen[j] if spec.continuous else int(chosen[j])
                actions.setdefault(id(slot), {})[agent] = a
                if key == LEARNER and agent in slot.trained:
                    if slot.track_of[agent].pending is not None:
                        self._close_transition(slot, agent, done=False, next_obs=o)
                    # Looked up again: a full chunk may have moved the agent to another track.
                    slot.track_of[agent].pending = _Pending(
                        o, m, a, float(logp[j]), float(values[j]), pool.learner_version
                    )
                    slot.decisions[agent] += 1

        for slot in self.slots:
            chosen = actions.get(id(slot))
            if not chosen:
                continue
            rewards = slot.game.step(chosen)
            slot.steps += len(chosen)
            self.stats.env_steps += len(chosen)
            for agent in slot.trained:
                slot.returns[agent] += rewards[agent]
                pending = slot.track_of[agent].pending
                if pending is not None:
                    pending.reward += rewards[agent]
            if slot.game.done:
                self._finish_episode(slot)

    def flush(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Sends finished chunks, one round trip per stream; blocks under back-pressure."""
        for lineage, outbox in self._outbox.items():
            if not outbox:
                continue
            ids = self.streams[lineage].add(outbox, should_stop=should_stop)
            # An add abandoned because we are stopping sends nothing; say so.
            if len(ids) != len(outbox):
                log.info("stopping: %d finished chunks not sent", len(outbox))
            self.stats.chunks_sent += len(ids)
            self._outbox[lineage] = []

    def maybe_refresh_weights(self, now: float) -> None:
        if now >= self._next_poll:
            self._next_poll = now + self.config.actors.weight_poll_seconds
            for pool in self.pools.values():
                if pool.refresh_learner():
                    self.stats.weight_updates += 1

    def _flush_due(self, now: float) -> bool:
        """Time to write (`actors.flush_seconds` since the last), or an outbox holds a
        quarter of its stream's room (one write must fit the stream)."""
        return now >= self._next_flush or any(
            len(outbox) * 4 >= self.streams[lineage].max_length
            for lineage, outbox in self._outbox.items()
        )

    def run(self, should_stop: Callable[[], bool], max_steps: int | None = None) -> RolloutStats:
        """Plays until should_stop() (or max_steps vector steps); sends every full chunk,
        the last ones on the way out."""
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            now = time.monotonic()
            self.maybe_refresh_weights(now)
            self.step()
            if self._flush_due(now):
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
