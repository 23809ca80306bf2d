"""Elo over time: the ratings the league would have reported at earlier moments.

Nothing extra is stored for this. Every result carries its arrival time, so the history
is the same maximum-likelihood fit (ratings.py) repeated over the results that had
arrived by each of a few cut-off times. That makes the history exact and reproducible
after a restart, and it never disagrees with the current table: the last point is the
table. Cost: one fit per point over the aggregated pair tallies (tens of players, a few
milliseconds each), so a few dozen points are cheap.

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from league.ratings import Rating, Tally, fit
from league.records import Outcome, PlayerRecord, ResultRecord

_ONE = {Outcome.A_WIN: Tally(wins=1), Outcome.DRAW: Tally(draws=1), Outcome.B_WIN: Tally(losses=1)}


@dataclass(frozen=True)
class HistoryPoint:
    time: float  # unix seconds: results that arrived at or before it are counted
    results: int  # rated results counted
    ratings: dict[str, Rating]  # players registered by `time`


def cutoffs(first: float, last: float, points: int) -> list[float]:
    """`points` evenly spaced times from `first` to `last` (both included)."""
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    if points == 1 or last <= first:
        return [last]
    step = (last - first) / (points - 1)
    return [first + k * step for k in range(points - 1)] + [last]


def rating_history(
    players: Sequence[PlayerRecord],
    results: Iterable[ResultRecord],
    anchor: str = "random",
    points: int = 20,
) -> list[HistoryPoint]:
    """Ratings at `points` times from the first rated result to the last.

    Only results between two frozen players count (as in standings.py); a player appears
    from its registration on. Empty when there are no rated results.
    """
    frozen = {p.id for p in players if p.frozen}
    rated = sorted(
        (r for r in results if r.player_a in frozen and r.player_b in frozen),
        key=lambda r: r.created_at,
    )
    if not rated:
        return []
    history: list[HistoryPoint] = []
    tallies: dict[tuple[str, str], Tally] = {}
    k = 0
    for t in cutoffs(rated[0].created_at, rated[-1].created_at, points):
        while k < len(rated) and rated[k].created_at <= t:
            r = rated[k]
            pair = (r.player_a, r.player_b)
            tallies[pair] = tallies.get(pair, Tally()) + _ONE[r.outcome]
            k += 1
        ids = [p.id for p in players if p.created_at <= t or p.id == anchor]
        ratings = fit(tallies, ids, anchor=anchor).ratings
        history.append(HistoryPoint(time=t, results=k, ratings=ratings))
    return history
