"""Bradley-Terry Elo fit: recovery of known strengths, order invariance, anchoring."""

import math
import random

import numpy as np
import pytest

from league.ratings import Tally, expected_score, fit, fit_elo, tally_results

TRUE_ELO = {
    "random": 0.0,
    "p1": 60.0,
    "p2": 150.0,
    "p3": 260.0,
    "p4": 400.0,
    "p5": 540.0,
    "p6": 700.0,
    "p7": 880.0,
}


def synthetic_tournament(n_games: int, seed: int) -> list[tuple[str, str, float]]:
    """Random pairings; outcomes drawn with expected score equal to the Elo model's,
    with draws common between close players (so draws really are half wins on average)."""
    rng = np.random.default_rng(seed)
    ids = list(TRUE_ELO)
    results = []
    for _ in range(n_games):
        i, j = rng.choice(len(ids), size=2, replace=False)
        a, b = ids[i], ids[j]
        p = expected_score(TRUE_ELO[a], TRUE_ELO[b])
        draw = 0.6 * min(p, 1.0 - p)
        u = rng.random()
        score = 1.0 if u < p - draw / 2 else 0.5 if u < p + draw / 2 else 0.0
        results.append((a, b, score))
    return results


def test_recovers_known_strengths_within_intervals() -> None:
    # Pairs within one tournament share its noise, so coverage is pooled over five
    # tournaments: a single one can dip below 90% by chance even when calibrated.
    ids = sorted(TRUE_ELO)
    pairs = [(a, b) for k, a in enumerate(ids) for b in ids[k + 1 :]]
    covered = 0
    for seed in range(5):
        results = synthetic_tournament(4000, seed=seed)
        assert any(s == 0.5 for _, _, s in results)
        model = fit(tally_results(results), TRUE_ELO)
        for a, b in pairs:
            low, high = model.diff_interval(a, b)
            covered += low <= TRUE_ELO[a] - TRUE_ELO[b] <= high
        assert sum(r.games for r in model.ratings.values()) == 2 * 4000
        for p, rating in model.ratings.items():
            assert rating.rated
            # Tight enough to tell neighbours ~100 Elo apart.
            assert rating.ci_high - rating.ci_low < (150 if p != "random" else 1e-12)
            assert abs(rating.elo - TRUE_ELO[p]) < 100
    assert covered / (5 * len(pairs)) >= 0.9


def test_order_of_results_does_not_matter() -> None:
    results = synthetic_tournament(600, seed=3)
    shuffled = list(results)
    random.Random(0).shuffle(shuffled)
    first = fit_elo(results, TRUE_ELO)
    second = fit_elo(reversed(shuffled), reversed(list(TRUE_ELO)))
    assert first.keys() == second.keys()
    for p in first:
        assert first[p].elo == pytest.approx(second[p].elo, abs=1e-9)
        assert first[p].ci_low == pytest.approx(second[p].ci_low, abs=1e-9)
        assert (first[p].wins, first[p].draws, first[p].losses) == (
            second[p].wins,
            second[p].draws,
            second[p].losses,
        )


def test_anchor_is_exactly_zero_with_zero_width() -> None:
    ratings = fit_elo(synthetic_tournament(300, seed=1), TRUE_ELO, anchor="p3")
    assert ratings["p3"].elo == 0.0
    assert ratings["p3"].ci_low == ratings["p3"].ci_high == 0.0
    assert ratings["random"].elo < 0.0


def test_matches_closed_form_for_one_player_against_the_anchor() -> None:
    # 7 wins, 2 draws, 1 loss plus one virtual draw: p = (7 + 1 + 0.5) / 11.
    results = [("a", "random", 1.0)] * 7 + [("a", "random", 0.5)] * 2 + [("random", "a", 1.0)]
    ratings = fit_elo(results, ["a", "random"])
    p = (7 + 1 + 0.5) / 11
    assert ratings["a"].elo == pytest.approx(400 * math.log10(p / (1 - p)), abs=1e-6)
    # Fisher information of 11 games at p, converted to Elo.
    sd = 400 / math.log(10) / math.sqrt(11 * p * (1 - p))
    assert ratings["a"].stderr == pytest.approx(sd, rel=1e-6)
    assert (ratings["a"].wins, ratings["a"].draws, ratings["a"].losses) == (7, 2, 1)


def test_all_wins_and_all_losses_stay_finite() -> None:
    results = [("champ", "random", 1.0)] * 50 + [("chump", "random", 0.0)] * 50
    ratings = fit_elo(results, ["champ", "chump", "random"])
    assert math.isfinite(ratings["champ"].elo) and ratings["champ"].elo > 400
    assert math.isfinite(ratings["chump"].elo) and ratings["chump"].elo < -400
    assert ratings["champ"].elo == pytest.approx(-ratings["chump"].elo)


def test_players_without_games_are_unrated() -> None:
    ratings = fit_elo([("a", "random", 1.0)], ["a", "random", "idle"])
    assert not ratings["idle"].rated
    assert ratings["idle"].games == 0
    assert ratings["a"].rated and ratings["random"].rated


def test_disconnected_players_are_tied_to_the_anchor_by_the_prior() -> None:
    # x and y never met the anchor; the virtual draws still place them around 0.
    results = [("x", "y", 1.0)] * 3
    ratings = fit_elo(results, ["random", "x", "y"])
    assert ratings["x"].elo > 0 > ratings["y"].elo
    assert ratings["x"].elo == pytest.approx(-ratings["y"].elo)


def test_self_games_and_bad_input() -> None:
    ratings = fit_elo([("a", "a", 1.0)], ["a", "random"])
    assert not ratings["a"].rated and ratings["a"].games == 0
    with pytest.raises(ValueError, match="must be 1, 0.5 or 0"):
        fit_elo([("a", "random", 0.7)], ["a", "random"])
    with pytest.raises(ValueError, match="anchor"):
        fit_elo([("a", "b", 1.0)], ["a", "b"])
    with pytest.raises(ValueError, match="prior_draws"):
        fit({}, ["random"], prior_draws=0.0)


def test_no_games_at_all() -> None:
    model = fit({}, ["random", "a"])
    assert model.ratings["random"].elo == 0.0
    assert not model.ratings["a"].rated and not model.ratings["random"].rated


def test_tally_arithmetic() -> None:
    t = Tally(wins=3, draws=2, losses=1)
    assert t.games == 6 and t.score == 4.0
    assert t.flipped() == Tally(1, 2, 3)
    assert tally_results([("a", "b", 1), ("a", "b", 0.5), ("b", "a", 0)]) == {
        ("a", "b"): Tally(1, 1, 0),
        ("b", "a"): Tally(0, 0, 1),
    }
    assert expected_score(100, 100) == 0.5
    assert expected_score(400, 0) == pytest.approx(10 / 11)
