"""Payoff matrix and Elo history as reports: built the same way by the service (GetPayoff,
GetRatingHistory) and by `selfplay league payoff|history --run` straight from a league
database, so both print the same numbers; plus their JSON and rich renderings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.table import Table

from league.history import rating_history
from league.payoff import PairRecord, Payoff
from league.records import PlayerRecord, ResultRecord
from league.reports import HistoryPointView, HistoryReport, HistoryRow, PayoffEntry, PayoffReport
from league.store import LeagueStore

MAX_HISTORY_POINTS = 500


class UnknownPlayer(LookupError):
    """A player filter names a player the league does not have."""

    def __init__(self, player: str) -> None:
        super().__init__(f"unknown player {player!r} in the player filter")
        self.player = player


def check_filter(players: Sequence[PlayerRecord], wanted: Sequence[str]) -> list[PlayerRecord]:
    """The players `wanted` names (all of them when it is empty), in registration order.

    Raises ValueError for an empty name and UnknownPlayer for one the league lacks.
    """
    if not wanted:
        return list(players)
    known = {p.id for p in players}
    for name in wanted:
        if not name:
            raise ValueError("the player filter contains an empty name")
        if name not in known:
            raise UnknownPlayer(name)
    chosen = set(wanted)
    return [p for p in players if p.id in chosen]


def check_points(points: int) -> None:
    if not 1 <= points <= MAX_HISTORY_POINTS:
        raise ValueError(f"points must be in 1..{MAX_HISTORY_POINTS}, got {points}")


def build_payoff(
    players: Sequence[PlayerRecord],
    pairs: Mapping[tuple[str, str], PairRecord],
    decay: float,
    wanted: Sequence[str] = (),
) -> PayoffReport:
    """The payoff matrix over the `wanted` players (everyone when empty)."""
    order = [p.id for p in check_filter(players, wanted)]
    entries = [
        PayoffEntry(a, b, r.wins, r.draws, r.losses, r.decayed_score, r.decayed_games, r.win_rate)
        for a in order
        for b in order
        if (r := pairs.get((a, b))) is not None
    ]
    return PayoffReport(order, entries, decay)


def build_history(
    players: Sequence[PlayerRecord],
    results: Sequence[ResultRecord],
    anchor: str,
    points: int,
    wanted: Sequence[str] = (),
) -> HistoryReport:
    """Elo at `points` times (league/history.py), reported for the `wanted` players.

    The fits always use every player's results: a filter only hides rows, so a
    player's numbers do not change with what else is asked for.
    """
    check_points(points)
    chosen = {p.id for p in check_filter(players, wanted)}
    kinds = {p.id: p.kind.value for p in players}
    views = []
    for point in rating_history(players, results, anchor=anchor, points=points):
        rows = [
            HistoryRow(
                r.player_id, kinds.get(r.player_id, "unknown"), r.elo, r.ci_low, r.ci_high, r.games
            )
            for r in point.ratings.values()
            if r.rated and r.player_id in chosen
        ]
        rows.sort(key=lambda r: (-r.elo, r.player_id))
        views.append(HistoryPointView(point.time, point.results, rows))
    return HistoryReport(anchor, views)


def payoff_from_db(
    db_path: str | Path, decay: float = 0.99, wanted: Sequence[str] = (), draw_score: float = 0.5
) -> PayoffReport:
    """The payoff matrix from a league database, opened read-only. The decayed values
    are rebuilt from the stored results in arrival order, as the service does at start
    (`draw_score`: the league's, league.draw_score, for the rates its PFSP read)."""
    store = LeagueStore(db_path, readonly=True)
    try:
        players, results = store.players(), store.results()
    finally:
        store.close()
    return build_payoff(players, Payoff(decay, results, draw_score).pairs(), decay, wanted)


def history_from_db(
    db_path: str | Path, anchor: str = "random", points: int = 20, wanted: Sequence[str] = ()
) -> HistoryReport:
    """The Elo history from a league database, opened read-only."""
    check_points(points)
    store = LeagueStore(db_path, readonly=True)
    try:
        players, results = store.players(), store.results()
    finally:
        store.close()
    if not any(p.id == anchor for p in players):
        raise ValueError(f"rating anchor {anchor!r} is not a registered player")
    return build_history(players, results, anchor, points, wanted)


# -- rendering -----------------------------------------------------------------


def render_payoff(report: PayoffReport, show_all: bool = False) -> Table:
    """The win-rate matrix: row player's decayed win rate against the column player, with
    the raw games in brackets. Players without games are left out unless `show_all`."""
    involved = {e.player for e in report.entries}
    ids = [p for p in report.players if show_all or p in involved]
    by_pair = {(e.player, e.opponent): e for e in report.entries}
    table = Table(
        title=f"Payoff: row's win rate vs column (decay {report.decay:g})",
        caption=(
            "decayed score share (a draw scores league.draw_score) plus one virtual ½; "
            "(n) = raw games"
        ),
    )
    table.add_column("player")
    for p in ids:
        table.add_column(p, justify="right")
    for a in ids:
        cells = []
        for b in ids:
            e = by_pair.get((a, b))
            if a == b:
                cells.append("—")
            elif e is None:
                cells.append("·")
            else:
                cells.append(f"{e.win_rate:.0%} ({e.wins + e.draws + e.losses})")
        table.add_row(a, *cells)
    return table


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def render_history(report: HistoryReport) -> Table:
    """One section per time point: each rated player's Elo and 95% interval."""
    table = Table(title=f"Elo history (anchor {report.anchor} = 0)")
    for name, justify in (
        ("time", "left"),
        ("results", "right"),
        ("player", "left"),
        ("elo", "right"),
        ("95% interval", "right"),
        ("games", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for k, point in enumerate(report.points):
        if k:
            table.add_section()
        for j, r in enumerate(point.ratings):
            first = j == 0
            table.add_row(
                _clock(point.time) if first else "",
                str(point.results) if first else "",
                r.player_id,
                f"{_round(r.elo)}",
                f"[{_round(r.ci_low)}, {_round(r.ci_high)}]",
                str(r.games),
            )
    return table


def _round(x: float) -> int:
    return 0 if not math.isfinite(x) else round(x)
