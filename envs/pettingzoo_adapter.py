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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces


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

    def __init__(self, name: str, api: str = "auto", kwargs: Mapping[str, Any] | None = None):
        factory, self._aec = _resolve_factory(name, api)
        try:
            self._env = factory(**dict(kwargs or {}))
        except TypeError as exc:
            raise EnvConfigError(f"env.kwargs: {exc}") from None
        agents = tuple(self._env.possible_agents)
        obs_dims, masks, actions = set(), set(), set()
        for agent in agents:
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
        if len(obs_dims) != 1 or len(actions) != 1:
            raise EnvConfigError(
                f"{name}: agents differ in observation/action sizes; give each role its own policy"
            )
        n_actions, continuous = actions.pop()
        self.spec = GameSpec(agents, obs_dims.pop(), n_actions, masks.pop(), self._aec, continuous)
        # Discrete observations (e.g. rock-paper-scissors) are one-hot encoded.
        first_space = self._env.observation_space(agents[0])
        self._one_hot = isinstance(first_space, spaces.Discrete)
        self._obs: dict[str, Any] = {}
        self.done = True
        self.returns: dict[str, float] = {}
        self.winner: str | None | bool = False

    def reset(self, seed: int | None = None) -> None:
        self.returns = {a: 0.0 for a in self.spec.agents}
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
            return [self._env.agent_selection]
        return list(self._env.agents)

    def observe(self, agent: str) -> tuple[np.ndarray, np.ndarray | None]:
        raw = self._env.observe(agent) if self._aec else self._obs[agent]
        if isinstance(raw, dict):
            obs = np.asarray(raw["observation"], dtype=np.float32).reshape(-1)
            mask = raw.get("action_mask")
            return obs, (None if mask is None else np.asarray(mask, dtype=np.uint8))
        if self._one_hot:
            obs = np.zeros(self.spec.obs_dim, np.float32)
            obs[int(raw)] = 1.0
            return obs, None
        return np.asarray(raw, dtype=np.float32).reshape(-1), None

    def outcome(self, agent: str, other: str) -> str:
        """ "a_win" / "b_win" / "draw" of agent (side a) against other, by the env's own
        verdict when it gives one, else by episode returns."""
        if self.winner is not False:
            return "a_win" if self.winner == agent else "b_win" if self.winner == other else "draw"
        return outcome_for(self.returns, agent, other)

    def step(self, actions: Mapping[str, Any]) -> dict[str, float]:
        """Applies the actions of `to_act()`; returns each agent's reward for it."""
        env = self._env
        if self._aec:
            env.step(int(actions[env.agent_selection]))
            rewards = {a: float(env.rewards.get(a, 0.0)) for a in self.spec.agents}
            # The game ends for everyone in the two-player games we rate; an agent
            # left over after termination must still be stepped with None.
            self.done = self._aec_finished()
            # An agent that finished before the others must be stepped with None.
            while not self.done and self._agent_finished(env.agent_selection):
                env.step(None)
                for a in self.spec.agents:
                    rewards[a] += float(env.rewards.get(a, 0.0))
                self.done = self._aec_finished()
        else:
            if self.spec.continuous:
                moves = {
                    a: np.clip(np.asarray(x, np.float32), -1.0, 1.0) for a, x in actions.items()
                }
            else:
                moves = {a: int(x) for a, x in actions.items()}
            self._obs, raw_rewards, terms, truncs, infos = env.step(moves)
            # Envs that judge the game themselves (sumo) name the winner; returns
            # would also count the shaping rewards.
            for info in infos.values():
                if isinstance(info, dict) and "winner" in info:
                    self.winner = info["winner"]
            rewards = {a: float(raw_rewards.get(a, 0.0)) for a in self.spec.agents}
            self.done = not env.agents or all(terms.get(a) or truncs.get(a) for a in env.agents)
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
        twin._obs = copy.deepcopy(self._obs)
        twin.returns = dict(self.returns)
        return twin

    def _agent_finished(self, agent: str) -> bool:
        env = self._env
        return bool(env.terminations.get(agent, False) or env.truncations.get(agent, False))

    def _aec_finished(self) -> bool:
        agents = self._env.agents
        return not agents or all(self._agent_finished(a) for a in agents)

    def close(self) -> None:
        self._env.close()


def outcome_for(returns: Mapping[str, float], agent: str, other: str) -> str:
    """ "a_win" / "b_win" / "draw" for agent (side a) against other (side b)."""
    if returns[agent] > returns[other]:
        return "a_win"
    if returns[agent] < returns[other]:
        return "b_win"
    return "draw"
