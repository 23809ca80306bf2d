"""The rollout worker over a batched env: all of an actor's games stepped by one call.

`RolloutWorker` steps one PettingZoo env per game and moves every observation, action and
reward through per-agent dicts: ~130 µs of Python per sumo game step, against ~4 µs for
the same game inside a `SumoVector` (BENCHMARKS.md, "Sumo env speed"). An env module that
offers `vector_env(num_envs, seed, **kwargs)` (envs/sumo/sumo_env.py) gets this worker
instead (config `actors.vector_env`, on by default): one (N, 2, obs) array in, one
(N, 2, act) array out, and per step one batched forward pass per policy that plays a seat
somewhere in the vector.

The league side is unchanged: episodes start, are seated, reported and chunked exactly as
in `RolloutWorker` (this class reuses its episode logic through `_VectorGame`, a view of
one game of the vector). What differs is the step: the learner's pending transitions live
in (N, 2) arrays, and the games restart inside the vector's step (autoreset), so the
observation it returns for a finished game is already the next episode's first.

Scope: two-seat simultaneous games without env.teams (sumo: main agent and exploiters).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actors.league_link import LeagueLink
from actors.policies import BUILTIN_RANDOM, PolicyPool
from actors.rollout import RolloutWorker, _Slot
from actors.scripted import CHARGE, STILL
from actors.seating import LEARNER, Seat
from core.codec import encode_chunk
from core.config import JobConfig
from envs.pettingzoo_adapter import Game
from envs.sumo.scripted import charge_actions
from transport.streams import TrajectoryStream


def vector_factory(config: JobConfig) -> Any | None:
    """The env module's `vector_env` when this job can use it, else None."""
    env = config.env
    if not config.actors.vector_env or env.teams or env.api == "aec" or ":" in env.name:
        return None
    try:
        module = importlib.import_module(env.name)
    except ImportError:
        return None
    return getattr(module, "vector_env", None)


def make_rollout_worker(
    config: JobConfig,
    actor_id: str,
    pools: PolicyPool | Mapping[str, PolicyPool],
    streams: TrajectoryStream | Mapping[str, TrajectoryStream],
    league: LeagueLink,
    seed: int = 0,
) -> RolloutWorker:
    """The batched worker when the env has a batched implementation, else the dict one."""
    cls = VectorRolloutWorker if vector_factory(config) is not None else RolloutWorker
    return cls(config, actor_id, pools, streams, league, seed=seed)


class _VectorGame:
    """Game `index` of a batched env, as the parts of `Game` the episode logic reads."""

    def __init__(self, vec: Any, index: int, template: Game) -> None:
        self.vec, self.index = vec, index
        self.agents, self.team_of, self.teams = template.agents, template.team_of, template.teams
        self.env = vec  # scripted players read env.bodies
        self.done = True

    def reset(self, seed: int | None = None) -> None:
        """The vector already restarted this game (autoreset); its own generator seeds it."""
        self.done = False

    def team_outcome(
        self, side_a: Sequence[str], side_b: Sequence[str], scoring: str | None = None
    ) -> str:
        """The env's verdict on the episode that ended at the last step."""
        seat = int(self.vec.winner[self.index])
        winner = self.agents[seat] if seat >= 0 else None
        return "a_win" if winner in side_a else "b_win" if winner in side_b else "draw"


class VectorRolloutWorker(RolloutWorker):
    """`RolloutWorker` with one batched env under all its games (module docstring)."""

    def _make_games(self, count: int) -> list[_VectorGame]:  # type: ignore[override]
        env = self.config.env
        factory = vector_factory(self.config)
        if factory is None:
            raise ValueError(f"{env.name} has no batched env (vector_env) for this job")
        template = Game(env.name, env.api, env.kwargs, self.config.team_prefixes())
        if len(template.agents) != 2 or len(template.teams) != 1:
            raise ValueError("the batched rollout worker plays two-seat games of one team")
        self.vector_seed = int(self.rng.integers(2**31))
        self.vec = factory(count, seed=self.vector_seed, **dict(env.kwargs))
        spec = next(iter(template.teams.values()))
        n, dim = count, spec.obs_dim
        # The learner's open decision per (game, seat): closed when that seat acts again
        # (its reward is what the seat earned in between) or when the game ends.
        self._p_open = np.zeros((n, 2), bool)
        self._p_obs = np.zeros((n, 2, dim), np.float32)
        self._p_action = np.zeros((n, 2, spec.num_actions), np.float32)
        self._p_logp = np.zeros((n, 2), np.float32)
        self._p_value = np.zeros((n, 2), np.float32)
        self._p_version = np.zeros((n, 2), np.int64)
        self._p_reward = np.zeros((n, 2))
        # Per (game, seat) this episode: every reward, and the learner's decisions.
        self._ep_return = np.zeros((n, 2))
        self._ep_decisions = np.zeros((n, 2), np.int64)
        self._actions = np.zeros((n, 2, self.vec.act_dim), np.float32)
        self._obs: np.ndarray | None = None
        self._groups: dict[Seat, tuple[np.ndarray, np.ndarray]] | None = None
        template.close()
        return [_VectorGame(self.vec, i, template) for i in range(count)]

    def _start_episode(self, slot: _Slot) -> None:
        super()._start_episode(slot)
        self._groups = None  # the seating changed
        self._ep_return[slot.index] = 0.0
        self._ep_decisions[slot.index] = 0

    def _episode_return(self, slot: _Slot, agent: str) -> float:
        return float(self._ep_return[slot.index, self.agents.index(agent)])

    def _episode_decisions(self, slot: _Slot, agent: str) -> int:
        return int(self._ep_decisions[slot.index, self.agents.index(agent)])

    def _group_seats(self) -> dict[Seat, tuple[np.ndarray, np.ndarray]]:
        """Who plays each (game, seat), inverted: policy -> (game indices, seat indices)."""
        rows: dict[Seat, tuple[list[int], list[int]]] = {}
        for slot in self.slots:
            for s, agent in enumerate(self.agents):
                games, seats = rows.setdefault(slot.seats[agent], ([], []))
                games.append(slot.index)
                seats.append(s)
        return {key: (np.array(g), np.array(s)) for key, (g, s) in rows.items()}

    def step(self) -> None:
        """One decision for both seats of every game, one env call."""
        if self._obs is None:
            self._obs = self.vec.reset()
            for slot in self.slots:
                self._start_episode(slot)
        if self._groups is None:
            self._groups = self._group_seats()
        obs, actions = self._obs, self._actions
        for (lineage, key), (games, seats) in self._groups.items():
            rows = obs[games, seats]
            if key == BUILTIN_RANDOM:
                actions[games, seats] = self.rng.uniform(-1.0, 1.0, (len(games), actions.shape[2]))
            elif key == CHARGE:
                actions[games, seats] = self._charge(rows, seats)
            elif key == STILL:
                actions[games, seats] = 0.0
            else:
                policy = self._policy(self.pools[lineage], key)
                chosen, logp, values = policy.act(rows, None, self.rng)
                actions[games, seats] = chosen
                if key == LEARNER:
                    self._decide(lineage, games, seats, rows, chosen, logp, values)

        obs, rewards, terminated, truncated = self.vec.step(actions)
        self._obs = obs
        self._p_reward += rewards
        self._ep_return += rewards
        self.stats.env_steps += 2 * len(self.slots)
        for slot in self.slots:
            slot.steps += 2
        for g in map(int, np.flatnonzero(terminated | truncated)):
            slot = self.slots[g]
            for s, agent in enumerate(self.agents):
                if self._p_open[g, s]:
                    self._close(slot.seats[agent][0], agent, g, s, None)
            slot.game.done = True
            self._finish_episode(slot)
            self._start_episode(slot)

    def _charge(self, rows: np.ndarray, seats: np.ndarray) -> np.ndarray:
        """The charge bot's actions; its steering depends on the body of each seat."""
        out = np.empty((len(rows), 2), np.float32)
        for s in (0, 1):
            mine = seats == s
            if mine.any():
                out[mine] = charge_actions(rows[mine], self.vec.bodies[s])
        return out

    def _decide(
        self,
        lineage: str,
        games: np.ndarray,
        seats: np.ndarray,
        rows: np.ndarray,
        chosen: np.ndarray,
        logp: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Close the learner's open decisions at these (game, seat)s (their next observation
        is `rows`) and open the new ones."""
        for j in np.flatnonzero(self._p_open[games, seats]):
            g, s = int(games[j]), int(seats[j])
            self._close(lineage, self.agents[s], g, s, rows[j])
        self._p_open[games, seats] = True
        self._p_obs[games, seats] = rows
        self._p_action[games, seats] = chosen
        self._p_logp[games, seats] = logp
        self._p_value[games, seats] = values
        self._p_version[games, seats] = self.pools[lineage].learner_version
        self._p_reward[games, seats] = 0.0
        self._ep_decisions[games, seats] += 1

    def _close(self, lineage: str, agent: str, g: int, s: int, next_obs: np.ndarray | None) -> None:
        """Append the open decision at (g, s) to its track; `next_obs` None: the game ended."""
        slot = self.slots[g]
        track = slot.track_of[agent]
        chunks = track.chunks
        chunks.add(
            self._p_obs[g, s],
            None,
            self._p_action[g, s],
            float(self._p_logp[g, s]),
            float(self._p_value[g, s]),
            int(self._p_version[g, s]),
            float(self._p_reward[g, s]),
            next_obs is None,
        )
        self._p_open[g, s] = False
        self.stats.learner_steps += 1
        if chunks.full:
            # After a terminal step the bootstrap value is multiplied by 0 anyway.
            bootstrap = np.zeros_like(self._p_obs[g, s]) if next_obs is None else next_obs
            self._outbox[lineage].append(encode_chunk(chunks.take(bootstrap)))
            slot.track_of[agent] = self.tracks[lineage].after_chunk(track)
