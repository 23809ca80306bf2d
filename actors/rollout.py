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
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from actors.chunking import ChunkBuilder
from actors.league_link import LeagueLink, Report
from actors.policies import BUILTIN_RANDOM, PolicyPool
from cluster.codec import encode_chunk
from cluster.config import JobConfig
from cluster.nets import act, random_legal_actions
from cluster.streams import TrajectoryStream
from envs.pettingzoo_adapter import Game

log = logging.getLogger(__name__)

LEARNER = "__learner__"  # policy key of the learning side in a slot's seat map


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
    game: Game
    tracks: dict[str, _Track]
    seats: dict[str, str] = field(default_factory=dict)  # agent -> policy key
    trained: frozenset[str] = frozenset()  # agents whose decisions are training data
    match_id: str = ""
    kind: str = "training"
    side_a: tuple[str, str] = ("", "")  # (agent, player id) reported as side a
    side_b: tuple[str, str] = ("", "")
    steps: int = 0
    episodes: int = 0


@dataclass
class RolloutStats:
    env_steps: int = 0  # every agent decision in every game
    learner_steps: int = 0  # decisions that became training data
    chunks_sent: int = 0
    games: int = 0
    eval_games: int = 0
    weight_updates: int = 0


class RolloutWorker:
    def __init__(
        self,
        config: JobConfig,
        actor_id: str,
        pool: PolicyPool,
        stream: TrajectoryStream,
        league: LeagueLink,
        seed: int = 0,
    ):
        self.config, self.actor_id = config, actor_id
        self.pool, self.stream, self.league = pool, stream, league
        self.rng = np.random.default_rng(seed)
        self.torch_gen = torch.Generator().manual_seed(seed)
        self.stats = RolloutStats()
        self._outbox: list[bytes] = []
        env_cfg, actors = config.env, config.actors
        self.slots: list[_Slot] = []
        for i in range(actors.envs_per_actor):
            game = Game(env_cfg.name, env_cfg.api, env_cfg.kwargs)
            spec = game.spec
            # env_index numbers tracks, so (actor_id, env_index, sequence) is unique;
            # actor ids carry a fresh suffix per incarnation.
            tracks = {
                agent: _Track(
                    ChunkBuilder(
                        config.job,
                        actor_id,
                        i * len(spec.agents) + j,
                        spec.obs_dim,
                        spec.num_actions,
                        actors.chunk_length,
                        continuous=spec.continuous,
                    )
                )
                for j, agent in enumerate(spec.agents)
            }
            self.slots.append(_Slot(game=game, tracks=tracks))
        self.spec = self.slots[0].game.spec
        self.learner_agents = env_cfg.learner_agents or self.spec.agents
        self._next_poll = 0.0

    # -- episodes ---------------------------------------------------------------
    def _start_episode(self, slot: _Slot) -> None:
        lineage = self.config.league.learner_player
        slot.episodes += 1
        slot.steps = 0
        agents = self.spec.agents
        match = None
        if self.rng.random() < self.config.league.eval_fraction:
            match = self.league.eval_match()  # None until two frozen players exist
        if match is not None:
            a, b = (agents[0], agents[1]) if self.rng.random() < 0.5 else (agents[1], agents[0])
            slot.seats = {a: match.player_a, b: match.player_b}
            slot.side_a, slot.side_b = (a, match.player_a), (b, match.player_b)
            slot.trained = frozenset()
        else:
            match = self.league.training_match()
            # Alternate seats per slot so the learner plays every seat equally often.
            me = self.learner_agents[slot.episodes % len(self.learner_agents)]
            opponent = LEARNER if match.self_play else match.player_b
            slot.seats = {a: (LEARNER if a == me else opponent) for a in agents}
            other = next(a for a in agents if a != me)
            slot.side_a, slot.side_b = (me, lineage), (other, match.player_b)
            slot.trained = frozenset(a for a, key in slot.seats.items() if key == LEARNER)
        slot.match_id, slot.kind = match.match_id, match.kind
        slot.game.reset(seed=int(self.rng.integers(2**31)))

    def _finish_episode(self, slot: _Slot) -> None:
        for agent in slot.trained:
            if slot.tracks[agent].pending is not None:
                self._close_transition(slot.tracks[agent], done=True, next_obs=None)
        (agent_a, player_a), (agent_b, player_b) = slot.side_a, slot.side_b
        self.league.report(
            Report(
                slot.match_id,
                player_a,
                player_b,
                slot.game.outcome(agent_a, agent_b),
                a_version=self.pool.learner_version if slot.kind == "training" else 0,
                kind=slot.kind,
                steps=slot.steps,
            )
        )
        self.stats.games += 1
        self.stats.eval_games += slot.kind == "eval"

    # -- transitions ------------------------------------------------------------
    def _close_transition(self, track: _Track, done: bool, next_obs: np.ndarray | None) -> None:
        p = track.pending
        assert p is not None
        track.chunks.add(p.obs, p.mask, p.action, p.logp, p.value, p.version, p.reward, done)
        track.pending = None
        self.stats.learner_steps += 1
        if track.chunks.full:
            # After a terminal step the bootstrap value is multiplied by 0 anyway.
            bootstrap = next_obs if next_obs is not None else np.zeros_like(p.obs)
            self._outbox.append(encode_chunk(track.chunks.take(bootstrap)))

    # -- the vector step ----------------------------------------------------------
    def step(self) -> None:
        """One decision for every agent that must act in every game."""
        groups: dict[str, list[tuple[_Slot, str, np.ndarray, np.ndarray | None]]] = {}
        for slot in self.slots:
            if slot.game.done:
                self._start_episode(slot)
            for agent in slot.game.to_act():
                obs, mask = slot.game.observe(agent)
                groups.setdefault(slot.seats[agent], []).append((slot, agent, obs, mask))

        actions: dict[int, dict[str, int | np.ndarray]] = {}
        for key, rows in groups.items():
            obs = np.stack([r[2] for r in rows])
            masks = None if rows[0][3] is None else np.stack([r[3] for r in rows])
            if key == BUILTIN_RANDOM:
                chosen = random_legal_actions(
                    masks, self.spec.num_actions, self.rng, len(rows), self.spec.continuous
                )
            else:
                net = self.pool.learner if key == LEARNER else self.pool.frozen(key)
                chosen, logp, values = act(net, obs, masks, self.torch_gen)
            for j, (slot, agent, o, m) in enumerate(rows):
                a = chosen[j] if self.spec.continuous else int(chosen[j])
                actions.setdefault(id(slot), {})[agent] = a
                if key == LEARNER and agent in slot.trained:
                    track = slot.tracks[agent]
                    if track.pending is not None:
                        self._close_transition(track, done=False, next_obs=o)
                    track.pending = _Pending(
                        o, m, a, float(logp[j]), float(values[j]), self.pool.learner_version
                    )

        for slot in self.slots:
            chosen = actions.get(id(slot))
            if not chosen:
                continue
            rewards = slot.game.step(chosen)
            slot.steps += len(chosen)
            self.stats.env_steps += len(chosen)
            for agent in slot.trained:
                pending = slot.tracks[agent].pending
                if pending is not None:
                    pending.reward += rewards[agent]
            if slot.game.done:
                self._finish_episode(slot)

    def flush(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Sends finished chunks in one round trip; blocks under back-pressure."""
        if self._outbox:
            ids = self.stream.add(self._outbox, should_stop=should_stop)
            # An add abandoned because we are stopping sends nothing; say so.
            if len(ids) != len(self._outbox):
                log.info("stopping: %d finished chunks not sent", len(self._outbox))
            self.stats.chunks_sent += len(ids)
            self._outbox = []

    def maybe_refresh_weights(self, now: float) -> None:
        if now >= self._next_poll:
            self._next_poll = now + self.config.actors.weight_poll_seconds
            if self.pool.refresh_learner():
                self.stats.weight_updates += 1

    def run(self, should_stop: Callable[[], bool], max_steps: int | None = None) -> RolloutStats:
        """Plays until should_stop() (or max_steps vector steps); sends every full chunk."""
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            self.maybe_refresh_weights(time.monotonic())
            self.step()
            self.flush(should_stop)
            steps += 1
        return self.stats


def new_actor_id(index: int) -> str:
    return f"actor{index}-{uuid.uuid4().hex[:8]}"
