"""Scripted players: stronger yardsticks than the random player, for evaluation and as
builtin league players (config league.builtins) that learners train and are rated against.

`tactical` is a two-ply search that works for any turn-based game through the
`Game` interface (it copies the game to look ahead): it takes an immediate win when
there is one, otherwise avoids moves after which the opponent can win at once, and
picks uniformly among what is left. In connect_four such a bot beats the random
player ~94% of the time, so beating *it* means real tactics were learned.

`charge` (sumo with the disc or bug body) goes straight at the opponent at full force.

`still` (any game with continuous actions) always sends zero actions: a sumo ant that
stands where it started and neither flails nor falls. A random ant falls over on its own in
about half of its games (its random torques flip the light body), so beating *it* can mean
no more than touching it first; beating `still` means pushing it out or knocking it over.
"""

from __future__ import annotations

import numpy as np

from envs.pettingzoo_adapter import Game, GameSpec
from envs.sumo.scripted import CHARGE_BODIES, charge_action

TACTICAL = "tactical"
CHARGE = "charge"
STILL = "still"
SCRIPTED = (TACTICAL, CHARGE, STILL)


def scripted_problem(name: str, env_name: str, spec: GameSpec) -> str | None:
    """Why scripted player `name` cannot play this game, or None if it can."""
    if name == TACTICAL and not spec.turn_based:
        return "the tactical bot plays turn-based games only"
    if name == CHARGE and not (
        env_name.startswith("envs.sumo") and spec.continuous and spec.num_actions == 2
    ):
        return "the charge bot plays sumo with the disc or bug body only"
    if name == STILL and not spec.continuous:
        return "the still bot plays games with continuous actions only"
    if name not in SCRIPTED:
        return f"unknown scripted player {name!r} (known: {', '.join(SCRIPTED)})"
    return None


def scripted_action(
    name: str, game: Game, agent: str, obs: np.ndarray, rng: np.random.Generator
) -> int | np.ndarray:
    """The move of scripted player `name` for `agent`, who observes `obs`."""
    if name == TACTICAL:
        return tactical_action(game, agent, rng)
    if name == CHARGE:
        return charge_action(obs, sumo_body(game, agent))
    if name == STILL:
        return np.zeros(game.spec.num_actions, np.float32)
    raise ValueError(f"unknown scripted player {name!r}")


def sumo_body(game: Game, agent: str) -> str:
    """The sumo body `agent` plays (the charge bot steers a bug, pushes a disc)."""
    bodies = getattr(game.env, "bodies", None)
    if bodies is None or agent not in game.agents:
        raise ValueError("the charge bot plays sumo only")
    body = bodies[game.agents.index(agent)]
    if body not in CHARGE_BODIES:
        raise ValueError(f"the charge bot plays the bodies {CHARGE_BODIES}, not {body!r}")
    return body


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
