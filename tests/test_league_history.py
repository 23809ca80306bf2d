"""league/history.py: Elo at earlier cut-off times, refitted over what had arrived."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from league.history import cutoffs, rating_history
from league.ratings import Tally, fit
from league.records import MatchKind, Outcome, PlayerKind, PlayerRecord, ResultRecord
from league.standings import standings
from league.store import LeagueStore


def player(pid: str, kind: PlayerKind, created_at: float) -> PlayerRecord:
    lineage = pid.split("@")[0] if kind != PlayerKind.BUILTIN else ""
    version = int(pid.split("@v")[1]) if kind == PlayerKind.SNAPSHOT else 0
    return PlayerRecord(pid, kind, lineage, version, created_at)


def result(mid: str, a: str, b: str, outcome: Outcome, at: float) -> ResultRecord:
    return ResultRecord(mid, a, b, outcome, 0, MatchKind.EVAL, 10, created_at=at)


PLAYERS = [
    player("random", PlayerKind.BUILTIN, 0.0),
    player("main", PlayerKind.LEARNER, 0.0),
    player("main@v1", PlayerKind.SNAPSHOT, 1.0),
    player("main@v2", PlayerKind.SNAPSHOT, 50.0),
]


def league_results() -> list[ResultRecord]:
    """v1 plays random from t=10 to 49; v2 (registered at 50) plays both from t=60."""
    out = []
    for k in range(40):
        outcome = Outcome.A_WIN if k % 3 else Outcome.DRAW
        out.append(result(f"r{k}", "main@v1", "random", outcome, 10.0 + k))
    for k in range(40):
        opponent = "main@v1" if k % 2 else "random"
        outcome = Outcome.A_WIN if k % 5 else Outcome.B_WIN
        out.append(result(f"s{k}", "main@v2", opponent, outcome, 60.0 + k))
    # Learner games are never rated, however many there are.
    out += [result(f"t{k}", "main", "main@v2", Outcome.A_WIN, 70.0 + k) for k in range(30)]
    return out


def test_cutoffs() -> None:
    assert cutoffs(10.0, 20.0, 3) == [10.0, 15.0, 20.0]
    assert cutoffs(10.0, 20.0, 1) == [20.0]
    assert cutoffs(10.0, 10.0, 5) == [10.0]  # one instant: one point
    with pytest.raises(ValueError, match="at least 1"):
        cutoffs(0.0, 1.0, 0)


def test_empty_results_give_no_history() -> None:
    assert rating_history(PLAYERS, [], points=10) == []
    learner_only = [result("t", "main", "random", Outcome.A_WIN, 5.0)]
    assert rating_history(PLAYERS, learner_only, points=10) == []


def test_each_point_is_the_fit_over_results_arrived_by_then() -> None:
    results = league_results()
    history = rating_history(PLAYERS, results, points=6)
    rated = [r for r in results if not r.player_a == "main"]
    # From the first rated result (t=10) to the last (t=99), evenly.
    assert [round(p.time, 6) for p in history] == [10.0, 27.8, 45.6, 63.4, 81.2, 99.0]
    for point in history:
        counted = [r for r in rated if r.created_at <= point.time]
        assert point.results == len(counted)
        tallies: dict[tuple[str, str], Tally] = {}
        for r in counted:
            one = {
                Outcome.A_WIN: Tally(wins=1),
                Outcome.DRAW: Tally(draws=1),
                Outcome.B_WIN: Tally(losses=1),
            }[r.outcome]
            tallies[(r.player_a, r.player_b)] = tallies.get((r.player_a, r.player_b), Tally()) + one
        registered = [p.id for p in PLAYERS if p.created_at <= point.time]
        expected = fit(tallies, registered).ratings
        assert set(point.ratings) == set(expected)
        for pid, rating in point.ratings.items():
            assert rating.elo == pytest.approx(expected[pid].elo, abs=1e-9)
            assert rating.ci_high == pytest.approx(expected[pid].ci_high, abs=1e-9)
            assert rating.games == expected[pid].games


def test_points_before_a_player_registered_omit_it() -> None:
    history = rating_history(PLAYERS, league_results(), points=6)
    for point in history:
        # main@v2 registered at t=50: absent from the points at 10, 27.8, 45.6.
        assert ("main@v2" in point.ratings) == (point.time >= 50.0), point.time
        assert "main@v1" in point.ratings and "random" in point.ratings
    assert not history[0].ratings["main"].rated  # a learner is listed but never rated
    assert history[2].ratings["main@v1"].games == 36  # t=10..45
    assert history[-1].ratings["main@v2"].games == 40


def test_results_arriving_out_of_order_give_the_same_history() -> None:
    results = league_results()
    shuffled = list(results)
    random.Random(7).shuffle(shuffled)
    assert shuffled != results
    assert rating_history(PLAYERS, shuffled, points=9) == rating_history(PLAYERS, results, points=9)


def test_the_last_point_equals_the_current_standings(tmp_path: Path) -> None:
    store = LeagueStore(tmp_path / "league.db")
    try:
        store.add_player("random", PlayerKind.BUILTIN)
        store.add_player("main", PlayerKind.LEARNER, "main")
        for v in (1, 2):
            store.add_player(f"main@v{v}", PlayerKind.SNAPSHOT, "main", v)
        for r in league_results():
            store.add_result(r)  # the store stamps its own arrival times
        history = rating_history(store.players(), store.results(), points=4)
        table = standings(store, "random")
    finally:
        store.close()
    assert len(history) == 4 and history[-1].results == 80
    last = history[-1].ratings
    assert {s.player.id for s in table} == set(last)
    for s in table:
        assert last[s.player.id] == s.rating
    assert history[0].results >= 1
