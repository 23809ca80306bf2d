"""The numbers the dashboard plots, read from a league database: standings, Elo history,
the payoff matrix, matches per minute, and the league's gauges for /metrics."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from league.history import HistoryPoint, rating_history
from league.payoff import Payoff
from league.prometheus import Metric
from league.ratings import Rating
from league.records import MatchKind, PlayerKind, PlayerRecord, ResultRecord
from league.standings import Standing, rating_fields, standings
from league.store import LeagueStore, StoreError

PAYOFF_DECAY = 0.99  # the league's default (LeagueSettings.payoff_decay)
DEFAULT_SNAPSHOTS = 12  # latest snapshots plotted by default, besides the builtins
RECENT_WINDOW_S = 300.0  # "matches per minute now" counts the last five minutes
MAX_BUCKETS = 120  # matches-per-minute bars; buckets widen (whole minutes) past this


@dataclass(frozen=True)
class _Derived:
    """What one state of the database (players, results) gives; rebuilt when it grows."""

    key: tuple[int, int]
    standings: list[Standing]
    history: dict[int, list[HistoryPoint]]  # by number of points


class LeagueView:
    """A read-only view of a league database with the numbers the page plots.

    Results are only ever appended, so the view follows the table by rowid: each call
    reads the new rows only, folds them into the payoff (in arrival order, as the
    service does), and recomputes standings and history only when players or results
    changed. Safe to share between the server's threads.
    """

    def __init__(
        self, db_path: str | Path, anchor: str = "random", decay: float = PAYOFF_DECAY
    ) -> None:
        self.db_path = Path(db_path)
        self.anchor = anchor
        self.decay = decay
        self._lock = threading.Lock()
        self._store: LeagueStore | None = None
        self._rowid = 0
        self._results: list[ResultRecord] = []
        self._payoff = Payoff(decay)
        self._players: list[PlayerRecord] = []
        self._derived: _Derived | None = None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def _refresh(self) -> None:
        """Reads new players and results; call with the lock held. Raises StoreError while
        the database does not exist (a league that has not started yet)."""
        if self._store is None:
            self._store = LeagueStore(self.db_path, readonly=True)
        for rowid, result in self._store.results_after(self._rowid):
            self._rowid = rowid
            self._results.append(result)
            self._payoff.add(result.player_a, result.player_b, result.outcome)
        self._players = self._store.players()
        key = (len(self._players), len(self._results))
        if self._derived is None or self._derived.key != key:
            try:
                rows = standings(self._store, self.anchor)
            except ValueError as exc:  # the anchor is not registered (yet)
                raise StoreError(str(exc)) from None
            self._derived = _Derived(key, rows, {})

    def _history(self, points: int) -> list[HistoryPoint]:
        assert self._derived is not None
        if points not in self._derived.history:
            self._derived.history[points] = rating_history(
                self._players, self._results, self.anchor, points
            )
        return self._derived.history[points]

    def _default_selection(self) -> list[str]:
        builtins = [p.id for p in self._players if p.kind == PlayerKind.BUILTIN]
        snapshots = [p.id for p in self._players if p.kind == PlayerKind.SNAPSHOT]
        return builtins + snapshots[-DEFAULT_SNAPSHOTS:]

    def _select(self, requested: Sequence[str] | None) -> tuple[list[str], list[str]]:
        """(known players in the requested order, unknown names); None = the default."""
        if requested is None:
            return self._default_selection(), []
        known = {p.id for p in self._players}
        chosen = list(dict.fromkeys(requested))
        return [p for p in chosen if p in known], [p for p in chosen if p not in known]

    # -- the JSON documents --------------------------------------------------------

    def standings_doc(self) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            assert self._derived is not None
            rows = self._derived.standings
            kinds = Counter(p.kind.value for p in self._players)
            results = Counter(r.kind.value for r in self._results)
            return {
                "anchor": self.anchor,
                "players": [_standing_row(s) for s in rows],
                "default_selection": self._default_selection(),
                "learners": [p.id for p in self._players if p.kind == PlayerKind.LEARNER],
                "counts": {k.value: kinds.get(k.value, 0) for k in PlayerKind},
                "results": {k.value: results.get(k.value, 0) for k in MatchKind},
            }

    def history_doc(self, players: Sequence[str] | None, points: int) -> dict[str, Any]:
        with self._lock:
            self._refresh()
            chosen, unknown = self._select(players)
            history = self._history(points)
            by_id = {p.id: p for p in self._players}
            series = []
            skipped = list(unknown)
            for pid in chosen:
                if not by_id[pid].frozen:
                    skipped.append(pid)  # a learner's strength moves: it has no rating
                    continue
                values: list[list[float] | None] = []
                for point in history:
                    r = point.ratings.get(pid)
                    values.append(None if r is None or not r.rated else _elo_triple(r))
                series.append({"player": pid, "kind": by_id[pid].kind.value, "values": values})
            return {
                "anchor": self.anchor,
                "points": [{"time": p.time, "results": p.results} for p in history],
                "series": series,
                "skipped": skipped,
            }

    def payoff_doc(self, players: Sequence[str] | None) -> dict[str, Any]:
        """Rows and columns: the learners first (their rates are what PFSP samples by),
        then the selection. Cells: the row player's decayed score against the column
        player, None where they never met."""
        with self._lock:
            self._refresh()
            chosen, unknown = self._select(players)
            learners = [p.id for p in self._players if p.kind == PlayerKind.LEARNER]
            if players is None:
                chosen = learners + [p for p in chosen if p not in learners]
            rates: list[list[float | None]] = []
            games: list[list[float]] = []
            for a in chosen:
                row_rates: list[float | None] = []
                row_games: list[float] = []
                for b in chosen:
                    n = self._payoff.games(a, b) if a != b else 0.0
                    row_games.append(round(n, 3))
                    row_rates.append(self._payoff.win_rate(a, b) if n > 0 else None)
                rates.append(row_rates)
                games.append(row_games)
            return {
                "decay": self.decay,
                "players": chosen,
                "win_rate": rates,
                "games": games,
                "unknown": unknown,
            }

    def matches_doc(self, now: float | None = None) -> dict[str, Any]:
        """Results per time bucket (whole minutes, at most about MAX_BUCKETS of them) from
        the first result's bucket to the last one's, and the rate over the last
        RECENT_WINDOW_S. `seconds` is the time a bucket covers: less than its width for
        the bucket a live run is still filling, so its rate is not understated."""
        now = time.time() if now is None else now
        with self._lock:
            self._refresh()
            times = [(r.created_at, r.kind) for r in self._results]
        totals = Counter(kind.value for _, kind in times)
        doc: dict[str, Any] = {
            "bucket_seconds": 60,
            "buckets": [],
            "recent_window_s": RECENT_WINDOW_S,
            "recent_per_minute": _recent_rate(times, now),
            "totals": {k.value: totals.get(k.value, 0) for k in MatchKind},
        }
        if not times:
            return doc
        first = min(t for t, _ in times)
        last = max(t for t, _ in times)
        width = 60 * max(1, math.ceil((last - first) / 60 / MAX_BUCKETS))
        start = math.floor(first / width) * width
        count = math.floor(last / width) - math.floor(first / width) + 1
        bins = [
            {"start": start + i * width, "seconds": width, "training": 0, "eval": 0}
            for i in range(count)
        ]
        bins[-1]["seconds"] = round(min(width, max(1.0, now - bins[-1]["start"])), 3)
        for t, kind in times:
            bins[min(count - 1, int((t - start) // width))][kind.value] += 1
        doc["bucket_seconds"] = width
        doc["buckets"] = bins
        return doc

    def evaluations_doc(self, points: int = 60) -> dict[str, Any]:
        """Goal jobs: per learner lineage, its evaluation episodes' success rate in up to
        `points` equal spans of the steps its learner had trained when the weights that
        played them were published (`steps_trained`: the span's mean), with a 95% Wilson
        interval. No episodes: an empty document (a self-play job)."""
        with self._lock:
            self._refresh()
            assert self._store is not None
            episodes = self._store.evaluations()
        by_player: dict[str, list[tuple[int, bool]]] = {}
        for e in episodes:
            by_player.setdefault(e.player, []).append((e.steps_trained, e.success))
        return {
            "episodes": len(episodes),
            "players": {p: _success_curve(rows, points) for p, rows in by_player.items()},
        }

    def metric_families(self, now: float | None = None) -> list[Metric]:
        now = time.time() if now is None else now
        with self._lock:
            self._refresh()
            assert self._derived is not None
            kinds = Counter(p.kind.value for p in self._players)
            results = Counter(r.kind.value for r in self._results)
            rated = [s for s in self._derived.standings if s.rating.rated]
            times = [(r.created_at, r.kind) for r in self._results]
        elo = Metric("league_player_elo", "gauge", "Elo of a frozen player (anchor = 0).")
        low = Metric("league_player_elo_ci_low", "gauge", "Lower end of the 95% Elo interval.")
        high = Metric("league_player_elo_ci_high", "gauge", "Upper end of the 95% Elo interval.")
        rated_games = Metric(
            "league_player_rated_games", "gauge", "Rated games (between frozen players)."
        )
        for s in rated:
            labels = {"player": s.player.id}
            elo.add(s.rating.elo, labels)
            low.add(s.rating.ci_low, labels)
            high.add(s.rating.ci_high, labels)
            rated_games.add(s.rating.games, labels)
        players = Metric("league_players", "gauge", "Registered players by kind.")
        for k in PlayerKind:
            players.add(kinds.get(k.value, 0), {"kind": k.value})
        total = Metric("league_results_total", "counter", "Match results stored, by kind.")
        for m in MatchKind:
            total.add(results.get(m.value, 0), {"kind": m.value})
        rate = Metric(
            "league_matches_per_minute",
            "gauge",
            f"Results stored per minute over the last {RECENT_WINDOW_S:g} seconds.",
        )
        rate.add(_recent_rate(times, now))
        return [players, total, rate, elo, low, high, rated_games]


def _success_curve(rows: list[tuple[int, bool]], points: int) -> list[dict[str, Any]]:
    """(steps trained, success) pairs, in order of steps, as up to `points` spans."""
    lo, hi = rows[0][0], rows[-1][0]
    width = max(1.0, (hi - lo + 1) / points)
    spans: dict[int, list[tuple[int, bool]]] = {}
    for steps, success in rows:
        spans.setdefault(min(points - 1, int((steps - lo) / width)), []).append((steps, success))
    curve = []
    for _, span in sorted(spans.items()):
        n, k = len(span), sum(s for _, s in span)
        low, high = _wilson(k, n)
        curve.append(
            {
                "steps_trained": round(sum(steps for steps, _ in span) / n),
                "episodes": n,
                "successes": k,
                "success_rate": k / n,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return curve


def _wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a success rate."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _standing_row(s: Standing) -> dict[str, Any]:
    p = s.player
    return rating_fields(p.id, p.kind.value, p.lineage, p.version, s.rating)


def _elo_triple(r: Rating) -> list[float]:
    return [round(r.elo, 2), round(r.ci_low, 2), round(r.ci_high, 2)]


def _recent_rate(times: Iterable[tuple[float, MatchKind]], now: float) -> float:
    recent = sum(1 for t, _ in times if now - RECENT_WINDOW_S < t <= now)
    return round(recent / (RECENT_WINDOW_S / 60.0), 3)
