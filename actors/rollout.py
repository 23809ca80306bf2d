"""The rollout worker: a vector of games, batched CPU inference, league matchmaking,
fixed-length chunks to the trajectory stream.

It is a plain class (Acme's `Actor` shape: it needs weights, a league and a sink) so
it runs the same inside a Ray actor, a test, or a benchmark.

Per vector step every game says which agents must act; their observations are
grouped by the policy that plays them (the learner, one snapshot, the random
player) so each policy runs one batched forward pass per step. Only the learner's
decisions become training data: a transition is closed when the learner is asked
to act again in that game (its reward is everything it received in between) or
when the game ends.
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
from actors.policies import BUILTIN_RANDOM, PolicyPool
from cluster.codec import encode_chunk
from cluster.config import JobConfig
from cluster.nets import act, random_legal_actions
from cluster.streams import TrajectoryStream
from envs.pettingzoo_adapter import Game, outcome_for
from league.client import LeagueClient, LeagueError

log = logging.getLogger(__name__)

LEARNER = "__learner__"  # policy key of the learning side in a slot's seat map


@dataclass
class _Pending:
    obs: np.ndarray
    mask: np.ndarray | None
    action: int
    logp: float
    value: float
    version: int
    reward: float = 0.0


@dataclass
class _Slot:
    game: Game
    chunks: ChunkBuilder
    seats: dict[str, str] = field(default_factory=dict)  # agent -> policy key
    match_id: str = ""
    kind: str = "training"
    side_a: tuple[str, str] = ("", "")  # (agent, player id) reported as side a
    side_b: tuple[str, str] = ("", "")
    learner_agent: str | None = None
    pending: _Pending | None = None
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
        league: LeagueClient,
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
        # Chunk sequence numbers restart per actor incarnation; the actor id carries a
        # fresh suffix so (actor, env, sequence) stays unique across restarts.
        for i in range(actors.envs_per_actor):
            game = Game(env_cfg.name, env_cfg.api, env_cfg.kwargs)
            spec = game.spec
            builder = ChunkBuilder(
                config.job,
                actor_id,
                i,
                spec.obs_dim,
                spec.num_actions,
                actors.chunk_length,
                spec.has_mask,
            )
            self.slots.append(_Slot(game=game, chunks=builder))
        self.spec = self.slots[0].game.spec
        self.learner_agents = env_cfg.learner_agents or self.spec.agents
        self._last_poll = 0.0

    # -- episodes ---------------------------------------------------------------
    def _start_episode(self, slot: _Slot) -> None:
        lineage = self.config.league.learner_player
        slot.episodes += 1
        slot.steps = 0
        slot.pending = None
        agents = self.spec.agents
        if self.rng.random() < self.config.league.eval_fraction:
            try:
                match = self.league.sample_eval_match()
                a, b = (agents[0], agents[1]) if self.rng.random() < 0.5 else (agents[1], agents[0])
                slot.seats = {a: match.player_a, b: match.player_b}
                slot.match_id, slot.kind = match.match_id, "eval"
                slot.side_a, slot.side_b = (a, match.player_a), (b, match.player_b)
                slot.learner_agent = None
                slot.game.reset(seed=int(self.rng.integers(2**31)))
                return
            except LeagueError as err:
                if err.code != "FAILED_PRECONDITION":
                    raise
                # Fewer than two frozen players yet: play a training game instead.
        match = self.league.sample_opponent(lineage)
        # Alternate seats per slot so the learner plays every seat equally often.
        learner_agent = self.learner_agents[slot.episodes % len(self.learner_agents)]
        opponent = LEARNER if match.player_b == lineage else match.player_b
        slot.seats = {a: (LEARNER if a == learner_agent else opponent) for a in agents}
        slot.match_id, slot.kind = match.match_id, "training"
        others = [a for a in agents if a != learner_agent]
        slot.side_a, slot.side_b = (learner_agent, lineage), (others[0], match.player_b)
        slot.learner_agent = learner_agent
        slot.game.reset(seed=int(self.rng.integers(2**31)))

    def _finish_episode(self, slot: _Slot) -> None:
        game = slot.game
        if slot.pending is not None:
            self._close_transition(slot, done=True, next_obs=None)
        (agent_a, player_a), (agent_b, player_b) = slot.side_a, slot.side_b
        outcome = outcome_for(game.returns, agent_a, agent_b)
        self.league.report_result(
            slot.match_id,
            player_a,
            player_b,
            outcome,
            a_version=self.pool.learner_version if slot.kind == "training" else 0,
            kind=slot.kind,
            steps=slot.steps,
        )
        self.stats.games += 1
        self.stats.eval_games += slot.kind == "eval"

    # -- transitions ------------------------------------------------------------
    def _close_transition(self, slot: _Slot, done: bool, next_obs: np.ndarray | None) -> None:
        p = slot.pending
        assert p is not None
        slot.chunks.add(p.obs, p.mask, p.action, p.logp, p.value, p.version, p.reward, done)
        slot.pending = None
        self.stats.learner_steps += 1
        if slot.chunks.full:
            # After a terminal step the bootstrap value is multiplied by 0 anyway.
            bootstrap = next_obs if next_obs is not None else np.zeros_like(p.obs)
            self._outbox.append(encode_chunk(slot.chunks.take(bootstrap)))

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

        actions: dict[int, dict[str, int]] = {}
        for key, rows in groups.items():
            obs = np.stack([r[2] for r in rows])
            masks = None if rows[0][3] is None else np.stack([r[3] for r in rows])
            if key == BUILTIN_RANDOM:
                chosen = random_legal_actions(masks, self.spec.num_actions, self.rng, len(rows))
            else:
                net = self.pool.learner if key == LEARNER else self.pool.frozen(key)
                chosen, logp, values = act(net, obs, masks, self.torch_gen)
            for j, (slot, agent, o, m) in enumerate(rows):
                a = int(chosen[j])
                actions.setdefault(id(slot), {})[agent] = a
                if key == LEARNER and agent == slot.learner_agent:
                    if slot.pending is not None:
                        self._close_transition(slot, done=False, next_obs=o)
                    slot.pending = _Pending(
                        o, m, a, float(logp[j]), float(values[j]), self.pool.learner_version
                    )

        for slot in self.slots:
            chosen = actions.get(id(slot))
            if not chosen:
                continue
            rewards = slot.game.step(chosen)
            slot.steps += len(chosen)
            self.stats.env_steps += len(chosen)
            if slot.pending is not None and slot.learner_agent is not None:
                slot.pending.reward += rewards[slot.learner_agent]
            if slot.game.done:
                self._finish_episode(slot)

    def flush(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Sends finished chunks in one round trip; blocks under back-pressure."""
        if self._outbox:
            self.stream.add(self._outbox, should_stop=should_stop)
            self.stats.chunks_sent += len(self._outbox)
            self._outbox = []

    def maybe_refresh_weights(self) -> None:
        now = time.monotonic()
        if now - self._last_poll >= self.config.actors.weight_poll_seconds:
            self._last_poll = now
            if self.pool.refresh_learner():
                self.stats.weight_updates += 1

    def run(self, should_stop: Callable[[], bool], max_steps: int | None = None) -> RolloutStats:
        """Plays until should_stop() (or max_steps vector steps); sends every full chunk."""
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            self.maybe_refresh_weights()
            self.step()
            self.flush(should_stop)
            steps += 1
        return self.stats


def new_actor_id(index: int) -> str:
    return f"actor{index}-{uuid.uuid4().hex[:8]}"
