"""league/openskill_ratings.py: OpenSkill (Plackett-Luce) folded over rated games."""

from __future__ import annotations

import pytest
from openskill.models import PlackettLuce

from league.openskill_ratings import ORDINAL_Z, OpenSkillLedger, openskill_ratings
from league.records import MatchKind, Outcome, PlayerKind, PlayerRecord, ResultRecord

PLAYERS = [
    PlayerRecord("random", PlayerKind.BUILTIN, "", 0, 0.0),
    PlayerRecord("main", PlayerKind.LEARNER, "main", 0, 0.0),
    PlayerRecord("main@v1", PlayerKind.SNAPSHOT, "main", 1, 1.0),
    PlayerRecord("main@v2", PlayerKind.SNAPSHOT, "main", 2, 2.0),
]


def result(k: int, a: str, b: str, outcome: Outcome) -> ResultRecord:
    return ResultRecord(f"m{k}", a, b, outcome, 0, MatchKind.EVAL, 1, created_at=float(k))


def test_one_game_matches_the_library_model() -> None:
    ledger = OpenSkillLedger()
    ledger.add("a", "b", Outcome.A_WIN)
    model = PlackettLuce()
    [[a], [b]] = model.rate([[model.rating()], [model.rating()]], ranks=[1, 2])
    got = ledger.ratings()
    assert (got["a"].mu, got["a"].sigma) == pytest.approx((a.mu, a.sigma))
    assert (got["b"].mu, got["b"].sigma) == pytest.approx((b.mu, b.sigma))
    assert got["a"].mu > 25.0 > got["b"].mu  # 25: OpenSkill's prior mean
    assert got["a"].sigma < 25.0 / 3.0  # one game's evidence narrows the belief
    assert got["a"].ordinal == pytest.approx(got["a"].mu - ORDINAL_Z * got["a"].sigma)
    assert got["a"].games == got["b"].games == 1


def test_a_player_who_wins_more_gets_a_higher_mu() -> None:
    results = []
    for k in range(20):
        # v2 beats random 16 times in 20, v1 only 8 times; same opponent, same order.
        results.append(
            result(2 * k, "main@v2", "random", Outcome.A_WIN if k % 5 else Outcome.B_WIN)
        )
        results.append(
            result(2 * k + 1, "main@v1", "random", Outcome.A_WIN if k % 5 < 2 else Outcome.B_WIN)
        )
    skills = openskill_ratings(PLAYERS, results)
    assert skills["main@v2"].mu > skills["main@v1"].mu
    assert skills["main@v2"].ordinal > skills["main@v1"].ordinal
    assert skills["main@v2"].games == skills["main@v1"].games == 20
    assert skills["random"].games == 40


def test_draws_are_ties() -> None:
    ledger = OpenSkillLedger()
    ledger.add("a", "b", Outcome.DRAW)
    even = ledger.ratings()
    # Between equals a tie moves nobody's mean, only shrinks both sigmas.
    assert even["a"].mu == pytest.approx(25.0) and even["b"].mu == pytest.approx(25.0)
    assert even["a"].sigma < 25.0 / 3.0
    # Against a stronger player a tie is good news for the weaker one.
    for _ in range(5):
        ledger.add("a", "c", Outcome.A_WIN)
    before = ledger.ratings()
    ledger.add("b", "a", Outcome.DRAW)
    after = ledger.ratings()
    assert after["b"].mu > before["b"].mu
    assert after["a"].mu < before["a"].mu
    # B_WIN is the mirror image of A_WIN.
    mirror = OpenSkillLedger()
    mirror.add("b", "a", Outcome.B_WIN)
    ledger_a_first = OpenSkillLedger()
    ledger_a_first.add("a", "b", Outcome.A_WIN)
    assert mirror.ratings()["a"].mu == pytest.approx(ledger_a_first.ratings()["a"].mu)


def test_only_games_between_frozen_players_count() -> None:
    results = [
        result(0, "main", "main@v1", Outcome.A_WIN),  # a learner: not rated
        result(1, "main@v1", "main@v1", Outcome.A_WIN),  # against itself: no information
        result(2, "main@v1", "random", Outcome.DRAW),
    ]
    skills = openskill_ratings(PLAYERS, results)
    assert set(skills) == {"main@v1", "random"}
    assert skills["main@v1"].games == 1
    assert openskill_ratings(PLAYERS, []) == {}


def test_deterministic_but_order_dependent() -> None:
    results = [
        result(k, "main@v1", "main@v2", Outcome.A_WIN if k < 6 else Outcome.B_WIN)
        for k in range(12)
    ]
    first = openskill_ratings(PLAYERS, results)
    assert openskill_ratings(PLAYERS, list(results)) == first  # same order, same numbers
    # The same six wins each, in the other order: sequential updates differ (which is
    # why Elo, a fit over all games at once, is the headline number).
    flipped = openskill_ratings(PLAYERS, list(reversed(results)))
    assert flipped["main@v1"].games == first["main@v1"].games
    assert flipped["main@v1"].mu != pytest.approx(first["main@v1"].mu, abs=1e-6)
    assert first["main@v1"].mu < first["main@v2"].mu  # v2 won the recent games
    assert flipped["main@v1"].mu > flipped["main@v2"].mu
