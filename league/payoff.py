"""Who beats whom lately: decayed win rates between every pair of players.

Each result updates its pair in both directions with the score of the game (win 1,
loss 0, a draw `draw_score` for both sides: 1/2 by default, 0 where the game pays a draw
like a loss, so PFSP sees an opponent it only draws with as one it cannot beat). Older
games of a pair weigh `decay` less per newer game of that pair, so a learner's win rate
against an opponent follows the learner as it improves.
Prioritized fictitious self-play (matchmaking.py) reads these rates; the service
rebuilds them from the stored results in arrival order after a restart, so they
survive restarts exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from league.records import Outcome, ResultRecord

# Outcome from the first player's side -> slot of its wins, draws, losses (below).
_COUNT_INDEX = {Outcome.A_WIN: 2, Outcome.DRAW: 3, Outcome.B_WIN: 4}
_MIRROR = {Outcome.A_WIN: Outcome.B_WIN, Outcome.DRAW: Outcome.DRAW, Outcome.B_WIN: Outcome.A_WIN}


@dataclass(frozen=True)
class PairRecord:
    """One ordered pair (player, opponent), counted from player's side."""

    wins: int
    draws: int
    losses: int
    decayed_score: float
    decayed_games: float

    @property
    def win_rate(self) -> float:
        """The decayed score share with one virtual game scored ½ as prior (what PFSP reads)."""
        return (self.decayed_score + 0.5) / (self.decayed_games + 1.0)


class Payoff:
    def __init__(
        self, decay: float = 0.99, results: Iterable[ResultRecord] = (), draw_score: float = 0.5
    ) -> None:
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if not 0.0 <= draw_score <= 1.0:
            raise ValueError(f"draw_score must be in [0, 1], got {draw_score}")
        self.decay = decay
        self.draw_score = draw_score
        self._score = {Outcome.A_WIN: 1.0, Outcome.DRAW: draw_score, Outcome.B_WIN: 0.0}
        # (player, opponent) -> [decayed score sum, decayed game count, wins, draws,
        # losses]; the raw counts ride along so a payoff report needs no extra query.
        self._pairs: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()
        for result in results:
            self.add(result.player_a, result.player_b, result.outcome)

    def add(self, player_a: str, player_b: str, outcome: Outcome | str) -> None:
        if player_a == player_b:
            return  # the latest self: no information about anyone else
        outcome = Outcome(outcome)
        with self._lock:
            for pair, seen in (
                ((player_a, player_b), outcome),
                ((player_b, player_a), _MIRROR[outcome]),
            ):
                acc = self._pairs.setdefault(pair, [0.0, 0.0, 0, 0, 0])
                acc[0] = self.decay * acc[0] + self._score[seen]
                acc[1] = self.decay * acc[1] + 1.0
                acc[_COUNT_INDEX[seen]] += 1

    def win_rate(self, player: str, opponent: str) -> float:
        """Decayed score of `player` against `opponent`, with one virtual game scored ½ as prior
        (0.5 before any game)."""
        with self._lock:
            wins, games = self._pairs.get((player, opponent), (0.0, 0.0))[:2]
        return (wins + 0.5) / (games + 1.0)

    def games(self, player: str, opponent: str) -> float:
        with self._lock:
            return self._pairs.get((player, opponent), (0.0, 0.0))[1]

    def pairs(self) -> dict[tuple[str, str], PairRecord]:
        """Every ordered pair with at least one game, as one consistent snapshot."""
        with self._lock:
            items = [(pair, list(acc)) for pair, acc in self._pairs.items()]
        return {
            pair: PairRecord(int(acc[2]), int(acc[3]), int(acc[4]), acc[0], acc[1])
            for pair, acc in items
        }
