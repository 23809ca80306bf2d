"""The batched stepper: all of a worker's games stepped by one call of a batched env.

`GameStepper` steps one PettingZoo env per game and moves every observation, action and
reward through per-agent dicts: ~130 µs of Python per sumo game step, against ~4 µs for
the same game inside a `SumoVector` (BENCHMARKS.md, "Sumo env speed"). An env module that
offers `vector_env(num_envs, seed, **kwargs)` (the contract: envs/batched.py) gets this
stepper instead (config `actors.vector_env`, on by default): one (N, 2, obs) array in,
one (N, 2, act) array out, and per step one batch per seat that plays somewhere in the
vector.

The league side is the worker's episodes (actors/episodes.py), as for `GameStepper`, over
`_VectorGame` views of the games. What differs is the step: the learner's open decisions
live in (N, 2) arrays, and games restart inside the env's step (autoreset), so the
observation it returns for a finished game is already the next episode's first.

Scope: two-seat simultaneous games without env.teams (sumo: main agent and exploiters).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from actors.episodes import Episodes, Slot
from actors.league_link import LeagueLink
from actors.players import LEARNER, Batch, Decision, Lineup, Seat
from actors.policies import PolicyPool
from actors.rollout import GameStepper, RolloutWorker
from core.config import JobConfig
from envs.batched import BatchedEnv, VectorFactory
from envs.pettingzoo_adapter import Game
from envs.randomization import randomized
from transport.streams import TrajectoryStream


def vector_factory(config: JobConfig) -> VectorFactory | None:
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
    """A worker with the batched stepper when the env has a batched implementation, else
    the per-game one."""
    stepper = VectorStepper if vector_factory(config) is not None else GameStepper
    return RolloutWorker(config, actor_id, pools, streams, league, seed=seed, stepper=stepper)


class _VectorGame:
    """Game `index` of a batched env, as the parts of `Game` the episodes and bots read."""

    def __init__(self, vec: BatchedEnv, index: int, template: Game) -> None:
        self.vec, self.index = vec, index
        self.agents, self.team_of, self.teams = template.agents, template.team_of, template.teams
        self.env = vec  # bots that know the game read env.bodies
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


class _SeatRows:
    """Where one seat plays in the vector: (game, seat) index arrays, and the games and
    agents as bots read them."""

    def __init__(self, games: list[int], seats: list[int], views: list[Any], agents: list[str]):
        self.games, self.seats = np.array(games), np.array(seats)
        self.views, self.agents = views, agents


class VectorStepper:
    def __init__(self, config: JobConfig, rng: np.random.Generator, count: int) -> None:
        env = config.env
        factory = vector_factory(config)
        if factory is None:
            raise ValueError(f"{env.name} has no batched env (vector_env) for this job")
        template = Game(env.name, env.api, env.kwargs, config.team_prefixes())
        if len(template.agents) != 2 or len(template.teams) != 1:
            raise ValueError("the batched rollout worker plays two-seat games of one team")
        self.rng = rng
        self.vector_seed = int(rng.integers(2**31))
        self.vec: BatchedEnv = factory(count, seed=self.vector_seed, **dict(env.kwargs))
        ranges = env.randomization.train if env.randomization is not None else None
        if ranges is not None:  # sim2real: each game draws new physics every episode
            self.vec = randomized(self.vec, ranges, int(rng.integers(2**31)))
        self.spec = next(iter(template.teams.values()))
        n, dim = count, self.spec.obs_dim
        # The learner's open decision per (game, seat): closed when that seat acts again
        # (its reward is what the seat earned in between) or when the game ends.
        self._p_open = np.zeros((n, 2), bool)
        self._p_obs = np.zeros((n, 2, dim), np.float32)
        self._p_action = np.zeros((n, 2, self.spec.num_actions), np.float32)
        self._p_stored: dict[str, np.ndarray] = {}  # what the acting policy records
        self._p_version = np.zeros((n, 2), np.int64)
        self._p_reward = np.zeros((n, 2))
        dynamics_dim = len(ranges.ranges()) if ranges is not None else 0
        self._p_dynamics = np.zeros((n, 2, dynamics_dim), np.float32)  # the episode's physics
        # A recurrent policy's state per (game, seat), zeros at each episode's start, and
        # the one the open decision started from (its chunk may begin there).
        state_dim = 2 * config.model.lstm
        self._state = np.zeros((n, 2, state_dim), np.float32) if state_dim else None
        self._p_state = np.zeros((n, 2, state_dim), np.float32)
        # Per (game, seat) this episode: every reward, and the learner's decisions.
        self._ep_return = np.zeros((n, 2))
        self._ep_decisions = np.zeros((n, 2), np.int64)
        self._actions = np.zeros((n, 2, self.vec.act_dim), np.float32)
        self._obs: np.ndarray | None = None
        self._seat_rows: dict[Seat, _SeatRows] | None = None
        # Per lineage: where each per-step chunk field's value comes from ("dones": None).
        self._sources: dict[str, list[np.ndarray | None]] = {}
        template.close()
        self.games: list[Any] = [_VectorGame(self.vec, i, template) for i in range(count)]

    def _start(self, episodes: Episodes, slot: Slot) -> None:
        episodes.start(slot)
        self._seat_rows = None  # the seating changed
        if self._state is not None:
            self._state[slot.index] = 0.0
        self._ep_return[slot.index] = 0.0
        self._ep_decisions[slot.index] = 0

    def _group_seats(self, episodes: Episodes) -> dict[Seat, _SeatRows]:
        """Who plays each (game, seat), inverted: seat -> where it plays."""
        rows: dict[Seat, tuple[list[int], list[int], list[Any], list[str]]] = {}
        for slot in episodes.slots:
            for s, agent in enumerate(episodes.agents):
                games, seats, views, agents = rows.setdefault(slot.seats[agent], ([], [], [], []))
                games.append(slot.index)
                seats.append(s)
                views.append(slot.game)
                agents.append(agent)
        return {seat: _SeatRows(*where) for seat, where in rows.items()}

    def step(self, episodes: Episodes, lineup: Lineup) -> None:
        """One decision for both seats of every game, one env call."""
        if self._obs is None:
            self._obs = self.vec.reset()
            for slot in episodes.slots:
                self._start(episodes, slot)
        if self._seat_rows is None:
            self._seat_rows = self._group_seats(episodes)
        obs, actions = self._obs, self._actions
        for seat, where in self._seat_rows.items():
            games, seats = where.games, where.seats
            rows = obs[games, seats]
            state = None if self._state is None else self._state[games, seats]
            batch = Batch(rows, None, self.rng, self.spec, where.views, where.agents, state=state)
            decision = lineup.player(seat).act(batch)
            actions[games, seats, : decision.actions.shape[1]] = decision.actions
            if seat[1] == LEARNER:
                self._decide(episodes, seat[0], games, seats, rows, decision, state)
            if self._state is not None and decision.state is not None:
                self._state[games, seats] = decision.state

        obs, rewards, terminated, truncated = self.vec.step(actions)
        self._obs = obs
        self._p_reward += rewards
        self._ep_return += rewards
        episodes.stats.env_steps += 2 * len(episodes.slots)
        for slot in episodes.slots:
            slot.steps += 2
        for g in map(int, np.flatnonzero(terminated | truncated)):
            slot = episodes.slots[g]
            for s, agent in enumerate(episodes.agents):
                if self._p_open[g, s]:
                    self._close(episodes, agent, g, s, None)
            for s, agent in enumerate(episodes.agents):
                if agent in slot.trained:
                    slot.returns[agent] = float(self._ep_return[g, s])
                    slot.decisions[agent] = int(self._ep_decisions[g, s])
            slot.game.done = True
            episodes.finish(slot)
            self._start(episodes, slot)

    def _decide(
        self,
        episodes: Episodes,
        lineage: str,
        games: np.ndarray,
        seats: np.ndarray,
        rows: np.ndarray,
        decision: Decision,
        state: np.ndarray | None = None,
    ) -> None:
        """Close the learner's open decisions at these (game, seat)s (their next observation
        is `rows`) and open the new ones (`state`: a recurrent policy's, before them)."""
        for j in np.flatnonzero(self._p_open[games, seats]):
            g, s = int(games[j]), int(seats[j])
            self._close(episodes, episodes.agents[s], g, s, rows[j])
        self._p_open[games, seats] = True
        self._p_obs[games, seats] = rows
        if state is not None:
            self._p_state[games, seats] = state
        self._p_action[games, seats] = decision.actions
        for name, values in decision.stored.items():
            stored = self._p_stored.get(name)
            if stored is None:
                shape = (len(self._p_open), 2, *np.shape(values)[1:])
                stored = self._p_stored[name] = np.zeros(shape, np.asarray(values).dtype)
            stored[games, seats] = values
        self._p_version[games, seats] = episodes.pools[lineage].learner_version
        if self._p_dynamics.shape[2]:
            self._p_dynamics[games, seats] = self.vec.dynamics[games]  # type: ignore[attr-defined]
        self._p_reward[games, seats] = 0.0
        self._ep_decisions[games, seats] += 1

    def _close(
        self, episodes: Episodes, agent: str, g: int, s: int, next_obs: np.ndarray | None
    ) -> None:
        """Record the open decision at (g, s); `next_obs` None: the game ended."""
        slot = episodes.slots[g]
        lineage = slot.seats[agent][0]
        sources = self._sources.get(lineage)
        if sources is None:
            sources = self._sources[lineage] = self._row_sources(episodes.step_names[lineage])
        done = next_obs is None
        values = [done if source is None else source[g, s] for source in sources]
        self._p_open[g, s] = False
        state = None if self._state is None else self._p_state[g, s].copy()
        episodes.record(slot, agent, values, next_obs, state)

    def _row_sources(self, names: tuple[str, ...]) -> list[np.ndarray | None]:
        arrays = {
            "obs": self._p_obs,
            "actions": self._p_action,
            "policy_versions": self._p_version,
            "rewards": self._p_reward,
            "dynamics": self._p_dynamics,
            **self._p_stored,
        }
        missing = set(names) - set(arrays) - {"dones"}
        if missing:
            raise ValueError(f"the acting policy records none of the chunk fields {missing}")
        return [None if name == "dones" else arrays[name] for name in names]
