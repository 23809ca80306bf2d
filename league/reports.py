"""The payoff matrix and Elo history as plain records: what GetPayoff and
GetRatingHistory carry, shared by the client, the service side (views.py) and the CLI.
No heavy imports, so the client (which every actor loads) stays light.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PayoffEntry:
    """One ordered pair, from `player`'s side (see PayoffEntry in league.proto)."""

    player: str
    opponent: str
    wins: int
    draws: int
    losses: int
    decayed_score: float
    decayed_games: float
    win_rate: float


@dataclass(frozen=True)
class PayoffReport:
    players: list[str]  # the matrix's players in registration order
    entries: list[PayoffEntry]  # pairs with games, by player then opponent
    decay: float

    def as_json(self) -> dict[str, Any]:
        return {
            "decay": self.decay,
            "players": list(self.players),
            "entries": [asdict(e) for e in self.entries],
        }


@dataclass(frozen=True)
class HistoryRow:
    player_id: str
    kind: str
    elo: float
    ci_low: float
    ci_high: float
    games: int


@dataclass(frozen=True)
class HistoryPointView:
    time: float  # unix seconds
    results: int  # rated results counted
    ratings: list[HistoryRow]  # players with rated games by then, best first


@dataclass(frozen=True)
class HistoryReport:
    anchor: str
    points: list[HistoryPointView]

    def as_json(self) -> dict[str, Any]:
        return {
            "anchor": self.anchor,
            "points": [
                {
                    "time": p.time,
                    "results": p.results,
                    "ratings": [asdict(r) for r in p.ratings],
                }
                for p in self.points
            ],
        }
