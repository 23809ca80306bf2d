"""Scripted players ("bots"): yardsticks stronger than chance for evaluation, and builtin
league players (config league.builtins) that learners train and are rated against.

Bots are registered by name. The ones that play any game of a kind live here; a bot that
knows one game is registered by the env module that provides the game (envs/sumo
registers "charge"), so it exists wherever that env is loaded. A new bot is a class with
`problem` and `act` and one `register_bot` call.

- `random`: a uniformly drawn legal action (uniform in [-1, 1] per dimension for
  continuous actions). Every league has it: it anchors Elo at 0.
- `tactical`: a two-ply search for any turn-based game, through the `Game` interface (it
  copies the game to look ahead): it takes an immediate win, otherwise avoids moves after
  which the opponent can win at once, and picks uniformly among what is left. It beats
  the random player ~94% of the time at connect_four, so beating *it* takes tactics.
- `still`: zero actions, for continuous-action games: a sumo ant that stands where it
  started. A random ant falls over on its own in about half of its games, so beating the
  random ant can mean no more than touching it first; beating `still` means pushing it
  out or knocking it over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from core.players import RANDOM
from core.registry import Registry
from envs.pettingzoo_adapter import Game, GameSpec


@dataclass
class Batch:
    """B agents to act for, as every player sees them (bots here, policies in
    actors/players.py): `agents[j]` of `games[j]` observes `obs[j]` with legal actions
    `mask[j]` (discrete games with masks; else None)."""

    obs: np.ndarray
    mask: np.ndarray | None
    rng: np.random.Generator
    spec: GameSpec
    games: Sequence[Any]
    agents: Sequence[str]
    greedy: bool = False  # the most likely action instead of a sample (evaluation)
    # Recurrent policies: each row's state before this step ([B, state_dim]; None: zeros).
    state: np.ndarray | None = None


class Bot(Protocol):
    name: str

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        """Why this bot cannot play agents of `spec` in env `env_name`; None if it can."""
        ...

    def act(self, batch: Batch) -> np.ndarray:
        """Actions: int64 [B] (discrete) or float32 [B, D] (continuous)."""
        ...


BOTS: Registry[Bot] = Registry("bot")


def register_bot(bot: Bot) -> Bot:
    return BOTS.register(bot.name, bot)


def bot_problem(name: str, env_name: str, spec: GameSpec) -> str | None:
    """Why bot `name` cannot play agents of `spec` in env `env_name` (or is unknown)."""
    if name not in BOTS:
        return BOTS.unknown(name)
    return BOTS.get(name).problem(env_name, spec)


def random_legal_actions(
    mask: np.ndarray | None,
    num_actions: int,
    rng: np.random.Generator,
    batch: int,
    continuous: bool = False,
) -> np.ndarray:
    """The random player's actions: a legal action chosen uniformly; for continuous
    actions, uniform in [-1, 1] per dimension."""
    if continuous:
        return rng.uniform(-1.0, 1.0, size=(batch, num_actions)).astype(np.float32)
    if mask is None:
        return rng.integers(0, num_actions, size=batch)
    # Random scores on legal entries; argmax picks a uniform legal action per row.
    scores = (rng.random((batch, num_actions)) + 1.0) * mask
    return scores.argmax(axis=1)


class RandomBot:
    name = RANDOM

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        return None

    def act(self, batch: Batch) -> np.ndarray:
        spec = batch.spec
        n = len(batch.obs)
        return random_legal_actions(batch.mask, spec.num_actions, batch.rng, n, spec.continuous)


class StillBot:
    name = "still"

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        return None if spec.continuous else "the still bot plays games with continuous actions only"

    def act(self, batch: Batch) -> np.ndarray:
        return np.zeros((len(batch.obs), batch.spec.num_actions), np.float32)


class TacticalBot:
    name = "tactical"

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        return None if spec.turn_based else "the tactical bot plays turn-based games only"

    def act(self, batch: Batch) -> np.ndarray:
        pairs = zip(batch.games, batch.agents, strict=True)
        return np.array([tactical_action(g, a, batch.rng) for g, a in pairs])


def _legal(game: Game, agent: str) -> np.ndarray:
    _, mask = game.observe(agent)
    return np.flatnonzero(mask) if mask is not None else np.arange(game.spec.num_actions)


def _wins_after(game: Game, agent: str, action: int) -> bool:
    trial = game.clone()
    trial.step({agent: int(action)})
    if not trial.done:
        return False
    others = [a for a in trial.spec.agents if a != agent]
    return all(trial.returns[agent] > trial.returns[o] for o in others)


def tactical_action(game: Game, agent: str, rng: np.random.Generator) -> int:
    if not game.spec.turn_based:
        raise ValueError("the tactical bot plays turn-based games only")
    legal = _legal(game, agent)
    for action in legal:
        if _wins_after(game, agent, action):
            return int(action)
    safe = []
    for action in legal:
        after = game.clone()
        after.step({agent: int(action)})
        if after.done:
            safe.append(action)
            continue
        (reply_agent,) = after.to_act()
        if not any(_wins_after(after, reply_agent, r) for r in _legal(after, reply_agent)):
            safe.append(action)
    return int(rng.choice(safe if safe else legal))


for _bot in (RandomBot(), StillBot(), TacticalBot()):
    register_bot(_bot)
