"""Run any PettingZoo game, turn-based (AEC) or simultaneous (parallel), through one
small interface that rollout actors drive.

`Game` hides the difference between the two APIs: `to_act()` names the agents that
must choose now (one agent in an AEC game, every live agent in a parallel game),
`observe(agent)` gives a flat float32 observation plus an optional legal-action
mask, and `step(actions)` advances the game and returns the rewards every agent got.
Observations and masks follow PettingZoo's convention for classic games: a dict
with "observation" and "action_mask".
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo.utils.wrappers import (
    AssertOutOfBoundsWrapper,
    BaseParallelWrapper,
    BaseWrapper,
    OrderEnforcingWrapper,
    TerminateIllegalWrapper,
)

from core.spaces import PolicyShape

# Wrappers that only police misuse (a move before reset, out of the action space, or
# masked illegal): a legal move through them does exactly what it does on the bare env.
_POLICING_WRAPPERS = (OrderEnforcingWrapper, AssertOutOfBoundsWrapper, TerminateIllegalWrapper)


class EnvConfigError(ValueError):
    """The configured env cannot be built or is not supported."""


@dataclass(frozen=True)
class GameSpec:
    agents: tuple[str, ...]
    obs_dim: int
    num_actions: int  # discrete: number of actions; continuous: action dimensions
    has_mask: bool
    turn_based: bool
    continuous: bool = False  # Box actions in [-1, 1] (e.g. MuJoCo sumo)

    @property
    def shape(self) -> PolicyShape:
        """What a policy network for these agents looks like at its ends."""
        return PolicyShape(self.obs_dim, self.num_actions, self.continuous)


def _resolve_factory(name: str, api: str) -> tuple[Callable[..., Any], bool]:
    """Returns (factory, is_aec) for "pkg.module" or "pkg.module:callable"."""
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvConfigError(f"env.name: cannot import {module_name!r}: {exc}") from None
    if attr:
        factory = getattr(module, attr, None)
        if factory is None:
            raise EnvConfigError(f"env.name: {module_name!r} has no {attr!r}")
        return factory, api != "parallel"
    if api in ("auto", "aec") and hasattr(module, "env"):
        return module.env, True
    if api in ("auto", "parallel") and hasattr(module, "parallel_env"):
        return module.parallel_env, False
    raise EnvConfigError(f"env.name: {module_name!r} has no {api} PettingZoo constructor")


def _obs_dim(space: spaces.Space) -> tuple[int, bool]:
    if isinstance(space, spaces.Dict) and "observation" in space.spaces:
        return int(np.prod(space["observation"].shape)), "action_mask" in space.spaces
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape)), False
    if isinstance(space, spaces.Discrete):
        return int(space.n), False
    raise EnvConfigError(f"unsupported observation space {space}")


class Game:
    """One PettingZoo game instance behind the actor-facing interface."""

    def __init__(
        self,
        name: str,
        api: str = "auto",
        kwargs: Mapping[str, Any] | None = None,
        teams: Mapping[str, Sequence[str]] | None = None,
    ):
        """`teams`: team name -> agent-id prefixes; every agent must match exactly one team
        and a team's agents must share observation and action spaces. None = one team
        "main" of every agent."""
        factory, self._aec = _resolve_factory(name, api)
        try:
            self._env = factory(**dict(kwargs or {}))
        except (TypeError, ValueError) as exc:  # an unknown keyword, or a value it refuses
            raise EnvConfigError(f"env.kwargs: {exc}") from None
        # State is read from the bare env: each attribute read through PettingZoo's
        # wrappers walks their __getattr__ chain (~12% of a connect_four actor's time);
        # the wrappers write what they change (illegal moves) to the bare env anyway.
        self._raw = _under_wrappers(self._env)
        # Turn-based games wrapped only in policing wrappers (PettingZoo's classic games)
        # are also stepped and observed on the bare env when the move is one the last
        # observation's mask allows: the wrappers were ~20% of a connect_four actor's
        # time. Any other move (illegal, out of range, unobserved, None) goes through
        # the wrappers, which judge it as they always do (TerminateIllegalWrapper: the
        # mover loses). Other wrappers may change what a move does, so there everything
        # goes through them.
        self._bare_moves = self._aec and _only_policing(self._env)
        self._masks: dict[str, np.ndarray] = {}  # agent -> mask it last observed
        agents = tuple(self._env.possible_agents)
        self.team_of = _assign_teams(name, agents, teams or {"main": ("",)})
        self.teams: dict[str, GameSpec] = {}
        for team in dict.fromkeys(self.team_of.values()):
            members = tuple(a for a in agents if self.team_of[a] == team)
            self.teams[team] = self._team_spec(name, members)
        # Discrete observations (e.g. rock-paper-scissors) are one-hot encoded.
        self._one_hot = {
            a: isinstance(self._env.observation_space(a), spaces.Discrete) for a in agents
        }
        self.agents = agents
        self._obs: dict[str, Any] = {}
        self.done = True
        self.returns: dict[str, float] = {}
        self.winner: str | None | bool = False

    def _team_spec(self, name: str, members: tuple[str, ...]) -> GameSpec:
        obs_dims, masks, actions = set(), set(), set()
        for agent in members:
            dim, has_mask = _obs_dim(self._env.observation_space(agent))
            obs_dims.add(dim)
            masks.add(has_mask)
            space = self._env.action_space(agent)
            if isinstance(space, spaces.Discrete):
                actions.add((int(space.n), False))
            elif isinstance(space, spaces.Box) and len(space.shape) == 1:
                if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)):
                    raise EnvConfigError(f"{name}: Box actions must lie in [-1, 1], got {space}")
                actions.add((int(space.shape[0]), True))
            else:
                raise EnvConfigError(f"{name}: unsupported action space {space}")
        if len(obs_dims) != 1 or len(actions) != 1 or len(masks) != 1:
            raise EnvConfigError(
                f"{name}: agents {list(members)} differ in observation/action spaces; give "
                "each kind its own policy with env.teams"
            )
        n_actions, continuous = actions.pop()
        return GameSpec(members, obs_dims.pop(), n_actions, masks.pop(), self._aec, continuous)

    @property
    def env(self) -> Any:
        """The PettingZoo env itself, for scripted players that need its setup (sumo bodies)."""
        return self._env

    def randomize(self, ranges: Any, seed: int | None = None) -> None:
        """Draws the game's physics from `ranges` (core/dynamics.py) every episode, where the
        env can (`randomize(ranges, seed)` on the env: sumo)."""
        if not hasattr(self._raw, "randomize"):
            raise ValueError(f"{type(self._raw).__name__} cannot randomise its dynamics")
        self._raw.randomize(ranges, seed)

    @property
    def spec(self) -> GameSpec:
        """The spec of a single-team game (every agent plays the same policy)."""
        if len(self.teams) != 1:
            raise EnvConfigError(f"this game has teams {list(self.teams)}; use Game.teams")
        return next(iter(self.teams.values()))

    def reset(self, seed: int | None = None) -> None:
        self._masks.clear()
        self.returns = {a: 0.0 for a in self.agents}
        self.winner: str | None | bool = False  # False: the env does not say
        if self._aec:
            self._env.reset(seed=seed)
        else:
            self._obs, _ = self._env.reset(seed=seed)
        self.done = False

    def to_act(self) -> list[str]:
        if self.done:
            return []
        if self._aec:
            return [self._raw.agent_selection]
        return list(self._raw.agents)

    def observe(self, agent: str) -> tuple[np.ndarray, np.ndarray | None]:
        if not self._aec:
            raw = self._obs[agent]
        else:
            raw = (self._raw if self._bare_moves else self._env).observe(agent)
        if isinstance(raw, dict):
            obs = np.asarray(raw["observation"], dtype=np.float32).reshape(-1)
            mask = raw.get("action_mask")
            if mask is None:
                return obs, None
            mask = np.asarray(mask, dtype=np.uint8)
            if self._bare_moves and agent == self._raw.agent_selection:
                self._masks[agent] = mask  # valid until the next move (cleared there)
            return obs, mask
        if self._one_hot[agent]:
            obs = np.zeros(self.teams[self.team_of[agent]].obs_dim, np.float32)
            obs[int(raw)] = 1.0
            return obs, None
        return np.asarray(raw, dtype=np.float32).reshape(-1), None

    def outcome(self, agent: str, other: str) -> str:
        """ "a_win" / "b_win" / "draw" of agent (side a) against other, by the env's own
        verdict when it gives one, else by episode returns."""
        if self.winner is not False:
            return "a_win" if self.winner == agent else "b_win" if self.winner == other else "draw"
        return outcome_for(self.returns, agent, other)

    def team_outcome(
        self, side_a: Sequence[str], side_b: Sequence[str], scoring: str | None = None
    ) -> str:
        """ "a_win" / "b_win" / "draw" between two groups of agents. The env's verdict wins
        if it gives one; else with `scoring` ("a" or "b") that side wins iff it scored (a
        positive total return) and otherwise loses; else the higher mean return wins."""
        if self.winner is not False:
            if self.winner in side_a:
                return "a_win"
            return "b_win" if self.winner in side_b else "draw"
        total_a = sum(self.returns[a] for a in side_a)
        total_b = sum(self.returns[b] for b in side_b)
        if scoring == "a":
            return "a_win" if total_a > 0 else "b_win"
        if scoring == "b":
            return "b_win" if total_b > 0 else "a_win"
        mean_a, mean_b = total_a / len(side_a), total_b / len(side_b)
        return "a_win" if mean_a > mean_b else "b_win" if mean_a < mean_b else "draw"

    def step(self, actions: Mapping[str, Any]) -> dict[str, float]:
        """Applies the actions of `to_act()`; returns each agent's reward for it."""
        env, raw = self._env, self._raw
        if self._aec:
            agent = raw.agent_selection
            move = int(actions[agent])
            mask = self._masks.get(agent)
            self._masks.clear()  # every mask was of the state this move changes
            if mask is not None and 0 <= move < len(mask) and mask[move]:
                raw.step(move)  # legal by the mask: the wrappers would pass it through
            else:
                env.step(move)
            rewards = {a: float(raw.rewards.get(a, 0.0)) for a in self.agents}
            # The game ends for everyone in the two-player games we rate; an agent
            # left over after termination must still be stepped with None.
            self.done = self._aec_finished()
            # An agent that finished before the others must be stepped with None.
            while not self.done and self._agent_finished(raw.agent_selection):
                env.step(None)
                for a in self.agents:
                    rewards[a] += float(raw.rewards.get(a, 0.0))
                self.done = self._aec_finished()
        else:
            moves = {
                a: (
                    np.clip(np.asarray(x, np.float32), -1.0, 1.0)
                    if self.teams[self.team_of[a]].continuous
                    else int(x)
                )
                for a, x in actions.items()
            }
            self._obs, raw_rewards, terms, truncs, infos = env.step(moves)
            # Envs that judge the game themselves (sumo) name the winner; returns
            # would also count the shaping rewards.
            for info in infos.values():
                if isinstance(info, dict) and "winner" in info:
                    self.winner = info["winner"]
            rewards = {a: float(raw_rewards.get(a, 0.0)) for a in self.agents}
            self.done = not raw.agents or all(terms.get(a) or truncs.get(a) for a in raw.agents)
        for agent, reward in rewards.items():
            self.returns[agent] += reward
        return rewards

    def clone(self) -> Game:
        """An independent copy to look ahead in (scripted bots). PettingZoo envs pickle
        through EzPickle, which rebuilds a *fresh* env from the constructor args, so
        deepcopy loses the game state: the bare env's __dict__ is copied instead. The
        copy runs without wrappers; they only police misuse (illegal or out-of-turn
        moves), which look-ahead never makes."""
        raw = self._env.unwrapped
        twin_env = object.__new__(type(raw))
        twin_env.__dict__.update(copy.deepcopy(raw.__dict__))
        twin = copy.copy(self)
        twin._env = twin_env
        twin._raw = _under_wrappers(twin_env)
        twin._masks = dict(self._masks)
        twin._obs = copy.deepcopy(self._obs)
        twin.returns = dict(self.returns)
        return twin

    def _agent_finished(self, agent: str) -> bool:
        raw = self._raw
        return bool(raw.terminations.get(agent, False) or raw.truncations.get(agent, False))

    def _aec_finished(self) -> bool:
        agents = self._raw.agents
        return not agents or all(self._agent_finished(a) for a in agents)

    def close(self) -> None:
        self._env.close()


def _under_wrappers(env: Any) -> Any:
    """The env below PettingZoo's forwarding wrappers (not below a conversion such as
    parallel_to_aec, which holds the turn state itself)."""
    while isinstance(env, BaseWrapper | BaseParallelWrapper):
        env = env.env
    return env


def _only_policing(env: Any) -> bool:
    """Whether every wrapper around the bare env is one of `_POLICING_WRAPPERS` (exactly
    those classes: a subclass may do more)."""
    while isinstance(env, BaseWrapper | BaseParallelWrapper):
        if type(env) not in _POLICING_WRAPPERS:
            return False
        env = env.env
    return True


def _assign_teams(
    name: str, agents: Sequence[str], teams: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """agent -> team by agent-id prefix; every agent must match exactly one team."""
    team_of: dict[str, str] = {}
    for agent in agents:
        matches = [t for t, prefixes in teams.items() if any(agent.startswith(p) for p in prefixes)]
        if len(matches) != 1:
            found = "no team" if not matches else f"teams {matches}"
            raise EnvConfigError(f"env.teams: agent {agent!r} of {name} matches {found}")
        team_of[agent] = matches[0]
    empty = [t for t in teams if t not in team_of.values()]
    if empty:
        raise EnvConfigError(f"env.teams: no agent of {name} belongs to team(s) {empty}")
    return team_of


def outcome_for(returns: Mapping[str, float], agent: str, other: str) -> str:
    """ "a_win" / "b_win" / "draw" for agent (side a) against other (side b)."""
    if returns[agent] > returns[other]:
        return "a_win"
    if returns[agent] < returns[other]:
        return "b_win"
    return "draw"
