"""Ratings of every player in a store: the one place that decides which results
are rated and how the list is ordered, shared by the service and `league table`.

Only games between two frozen players (SNAPSHOT or BUILTIN) are rated: a
LEARNER's side changes strength while it trains, so its games cannot be
attributed to one player. Game counts in a standing are those rated games.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from league.ratings import Rating, fit, player_totals
from league.records import PlayerRecord
from league.store import LeagueStore

if TYPE_CHECKING:
    from league.client import RatingRow


@dataclass(frozen=True)
class Standing:
    player: PlayerRecord
    rating: Rating


def standings(store: LeagueStore, anchor: str) -> list[Standing]:
    """Rated players by Elo (best first), then unrated ones in registration order.

    Raises ValueError when `anchor` is not a registered player.
    """
    players = store.players()
    if not any(p.id == anchor for p in players):
        raise ValueError(f"rating anchor {anchor!r} is not a registered player")
    result = fit(store.rated_tallies(), [p.id for p in players], anchor=anchor)
    rows = [Standing(p, result.ratings[p.id]) for p in players]
    rated = sorted((s for s in rows if s.rating.rated), key=lambda s: -s.rating.elo)
    return rated + [s for s in rows if not s.rating.rated]


def rated_games(store: LeagueStore) -> dict[str, int]:
    """Rated games per player (players without any are absent)."""
    return {p: t.games for p, t in player_totals(store.rated_tallies()).items()}


def rating_fields(
    player: str, kind: str, lineage: str, version: int, r: Rating | RatingRow
) -> dict[str, Any]:
    """One player's row of the ratings table (--json, the dashboard): Elo fields are None
    for unrated players."""
    return {
        "player": player,
        "kind": kind,
        "lineage": lineage,
        "version": version,
        "elo": r.elo if r.rated else None,
        "ci_low": r.ci_low if r.rated else None,
        "ci_high": r.ci_high if r.rated else None,
        "games": r.games,
        "wins": r.wins,
        "draws": r.draws,
        "losses": r.losses,
        "rated": r.rated,
    }
