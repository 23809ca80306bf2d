"""Who acts: one interface for everything that picks actions for a batch of agents (a
policy network, a frozen snapshot's, a bot; the batch is envs/bots.py `Batch`), and the
one dispatch from a seat to it that both rollout workers and `selfplay eval` use.

A seat is (lineage, player): the lineage whose policy pool holds the player, and either
LEARNER (that lineage's latest weights, whose decisions become training data), a frozen
snapshot's id, or a bot's name (envs/bots.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

import numpy as np
import torch

from envs.bots import BOTS, Batch, Bot

LEARNER = "__learner__"  # the player key of a lineage's latest weights in a seat
Seat = tuple[str, str]  # (lineage, LEARNER | snapshot id | bot name)


class Decision(NamedTuple):
    actions: np.ndarray  # int64 [B] or float32 [B, D]
    # What the acting policy records per row for the learner, by chunk field name
    # (core/chunks.py): an actor-critic's log-probabilities and values; nothing for bots.
    stored: Mapping[str, np.ndarray]
    # A recurrent policy's state after this step, per row (the next step's `Batch.state`).
    state: np.ndarray | None = None


class Player(Protocol):
    def act(self, batch: Batch) -> Decision: ...


class BotPlayer:
    """A bot (envs/bots.py) as a player: it records nothing."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def act(self, batch: Batch) -> Decision:
        return Decision(self.bot.act(batch), {})


class PolicySource(Protocol):
    """One lineage's networks as players (actors/policies.py PolicyPool)."""

    def learner_policy(self, generator: torch.Generator) -> Player: ...

    def frozen_policy(self, player_id: str, generator: torch.Generator) -> Player: ...


class Lineup:
    """Seat -> player, for a worker's lineages; bots are made once and shared."""

    def __init__(self, pools: Mapping[str, PolicySource], generator: torch.Generator) -> None:
        self.pools, self.generator = pools, generator
        self._bots: dict[str, BotPlayer] = {}

    def player(self, seat: Seat) -> Player:
        lineage, key = seat
        if key == LEARNER:
            return self.pools[lineage].learner_policy(self.generator)
        if key in BOTS:
            bot = self._bots.get(key)
            if bot is None:
                bot = self._bots[key] = BotPlayer(BOTS.get(key))
            return bot
        return self.pools[lineage].frozen_policy(key, self.generator)


__all__ = ["LEARNER", "Batch", "BotPlayer", "Decision", "Lineup", "Player", "Seat"]
