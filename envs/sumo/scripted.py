"""A scripted sumo opponent: the "charge" bot, a yardstick stronger than random (registered
with envs/bots.py when envs.sumo is imported).

Charging means going straight at the opponent at full force. Observation layout in
observation.py: for the disc and the bug (no limb joints), [13:15] is the opponent's xy minus
our own, in our own frame (+x = our heading).

- disc: the two actuators push along the own frame, so charging is a unit force at the
  opponent. Two equal discs pushing head-on stall, so nothing beats this bot by much.
- bug: full thrust along its heading while it turns towards the opponent. It turns in a
  wide arc at speed, so it can be sidestepped and pushed from the side
  (benchmarks/sumo_charge_matador.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.bots import Batch, register_bot
from envs.pettingzoo_adapter import GameSpec

DISC_OPPONENT_XY = slice(13, 15)
CHARGE_BODIES = ("disc", "bug")
TURN_GAIN = 3.0  # full turn torque once the opponent is more than 1/3 rad (19 deg) off


def charge_action(obs: np.ndarray, body: str = "disc") -> np.ndarray:
    """The charge bot's action for an agent with the given body, which observes `obs`."""
    return charge_actions(np.asarray(obs)[None], body)[0]


def charge_actions(obs: np.ndarray, body: str = "disc") -> np.ndarray:
    """(B, 2) float32 charge-bot actions for B agents with the given body, observing
    `obs` (B, obs_dim)."""
    rel = np.asarray(obs[:, DISC_OPPONENT_XY], dtype=np.float64)
    if body == "bug":
        bearing = np.arctan2(rel[:, 1], rel[:, 0])
        turn = np.clip(TURN_GAIN * bearing, -1.0, 1.0)
        return np.stack([np.ones_like(turn), turn], axis=1).astype(np.float32)
    if body != "disc":
        raise ValueError(f"the charge bot plays the bodies {CHARGE_BODIES}, not {body!r}")
    norm = np.linalg.norm(rel, axis=1, keepdims=True)
    # A vanishing offset (coincident discs) has no direction: push nowhere.
    unit = np.divide(rel, norm, out=np.zeros_like(rel), where=norm >= 1e-6)
    return unit.astype(np.float32)


def body_of(game: Any, agent: str) -> str:
    """The sumo body `agent` plays in `game` (a `Game` over the sumo env, or a view of one
    game of a `SumoVector`: anything whose `env.bodies` lists the seats' bodies)."""
    bodies = getattr(game.env, "bodies", None)
    if bodies is None or agent not in game.agents:
        raise ValueError("the charge bot plays sumo only")
    return str(bodies[list(game.agents).index(agent)])


class ChargeBot:
    name = "charge"

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        if env_name.startswith("envs.sumo") and spec.continuous and spec.num_actions == 2:
            return None
        return "the charge bot plays sumo with the disc or bug body only"

    def act(self, batch: Batch) -> np.ndarray:
        rows_of: dict[str, list[int]] = {}
        for j, (game, agent) in enumerate(zip(batch.games, batch.agents, strict=True)):
            rows_of.setdefault(body_of(game, agent), []).append(j)
        if len(rows_of) == 1:  # one body: no regrouping
            (body,) = rows_of
            return charge_actions(batch.obs, body)
        out = np.empty((len(batch.obs), 2), np.float32)
        for body, rows in rows_of.items():
            out[rows] = charge_actions(batch.obs[rows], body)
        return out


register_bot(ChargeBot())
