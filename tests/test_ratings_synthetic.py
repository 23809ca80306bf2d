"""Elo recovery on a synthetic tournament whose true strengths are known.

Games come from a model with draws whose expected score still follows the Elo
logistic curve: with p the logistic expected score of side a and d a draw rate,
P(a wins) = p - d/2, P(draw) = d, P(b wins) = 1 - p - d/2. The fit counts a draw
as half a win, so its expected score is exactly p and the true differences are
what it should recover. The same games then go through a real league server,
whose ratings must be the pure fit's.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from league.client import LeagueClient
from league.ratings import EloFit, expected_score, fit, tally_results
from league.server import LeagueServer

TOKEN = "synthetic-token"
GAMES = 5_000
SEED = 20240611
# A share of the largest draw rate that keeps every probability valid (2 min(p, 1-p)):
# about a fifth of the games end drawn, more between close players.
DRAW_SHARE = 0.5
# Both frozen kinds the league rates: builtins and snapshots of a learner.
TRUE_ELO = {
    "random": 0.0,  # the anchor
    "b-weak": -220.0,
    "b-mid": 60.0,
    "b-strong": 410.0,
    "b-top": 560.0,
    "main@v1": -90.0,
    "main@v2": 20.0,
    "main@v3": 130.0,
    "main@v4": 190.0,
    "main@v5": 260.0,
    "main@v6": 330.0,
    "main@v7": 480.0,
}
OUTCOME = {1.0: "a_win", 0.5: "draw", 0.0: "b_win"}


def synthetic_games(seed: int) -> list[tuple[str, str, float]]:
    """(a, b, score_a) for GAMES games between uniformly drawn distinct players."""
    rng = np.random.default_rng(seed)
    names = sorted(TRUE_ELO)
    games = []
    for _ in range(GAMES):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        p = expected_score(TRUE_ELO[a], TRUE_ELO[b])
        d = DRAW_SHARE * 2.0 * min(p, 1.0 - p)
        u = rng.random()
        score = 1.0 if u < p - d / 2 else 0.5 if u < p + d / 2 else 0.0
        games.append((a, b, score))
    return games


@pytest.fixture(scope="module")
def games() -> list[tuple[str, str, float]]:
    return synthetic_games(SEED)


@pytest.fixture(scope="module")
def pure_fit(games: list[tuple[str, str, float]]) -> EloFit:
    return fit(tally_results(games), TRUE_ELO, anchor="random")


def test_tournament_has_enough_games_and_draws(games: list[tuple[str, str, float]]) -> None:
    draws = sum(score == 0.5 for _, _, score in games)
    assert len(games) >= 5_000 and len(TRUE_ELO) >= 10
    # Draws must matter, or the half-a-win convention would go untested.
    assert 0.15 * len(games) < draws < 0.5 * len(games)


def test_fitted_differences_recover_true_ones_within_intervals(pure_fit: EloFit) -> None:
    covered, misses, half_widths = 0, [], []
    pairs = list(itertools.combinations(sorted(TRUE_ELO), 2))
    for a, b in pairs:
        low, high = pure_fit.diff_interval(a, b)
        truth = TRUE_ELO[a] - TRUE_ELO[b]
        half_widths.append((high - low) / 2)
        if low <= truth <= high:
            covered += 1
        else:
            misses.append((a, b, truth, round(low, 1), round(high, 1)))
    assert covered >= 0.9 * len(pairs), f"{covered}/{len(pairs)} covered; misses: {misses}"
    # Vacuous (huge) intervals would cover everything; with ~830 games per player a
    # pair's 95% half-width is about 40-50 Elo.
    assert max(half_widths) < 80.0


def test_pair_interval_uses_the_covariance(pure_fit: EloFit) -> None:
    """The interval of a difference is var_a + var_b - 2 cov_ab, the anchor exact."""
    a, b = "main@v3", "b-strong"
    i, j = pure_fit.index[a], pure_fit.index[b]
    cov = pure_fit.covariance
    var = cov[i, i] + cov[j, j] - 2.0 * cov[i, j]
    low, high = pure_fit.diff_interval(a, b)
    assert (high - low) / 2 == pytest.approx(1.959963984540054 * np.sqrt(var), rel=1e-9)
    # Against the anchor the interval is the player's own.
    rating = pure_fit.ratings[a]
    assert pure_fit.diff_interval(a, "random") == pytest.approx((rating.ci_low, rating.ci_high))


def test_league_server_rates_the_same_games_like_the_pure_fit(
    tmp_path: Path, games: list[tuple[str, str, float]], pure_fit: EloFit
) -> None:
    server = LeagueServer(tmp_path / "league.db", token=TOKEN)
    server.start()
    try:
        with LeagueClient(server.address, token=TOKEN) as client:
            client.register_player("main")  # the learner the snapshots are frozen from
            for name in TRUE_ELO:
                if name.startswith("main@v"):
                    client.register_snapshot("main", int(name.removeprefix("main@v")))
                elif name != "random":  # "random" is a default builtin
                    client.register_player(name, "builtin")
            for k, (a, b, score) in enumerate(games):
                applied = client.report_result(f"g{k:05d}", a, b, OUTCOME[score], kind="eval")
                assert applied
            rows = {r.player_id: r for r in client.ratings()}
    finally:
        server.stop(0)

    # The learner is registered but never rated: its games would not be frozen ones.
    assert not rows.pop("main").rated
    assert set(rows) == set(TRUE_ELO)
    for name, expected in pure_fit.ratings.items():
        got = rows[name]
        assert got.rated
        assert got.elo == pytest.approx(expected.elo, abs=1e-6), name
        assert got.ci_low == pytest.approx(expected.ci_low, abs=1e-6), name
        assert got.ci_high == pytest.approx(expected.ci_high, abs=1e-6), name
        counts = (got.games, got.wins, got.draws, got.losses)
        assert counts == (expected.games, expected.wins, expected.draws, expected.losses), name
    assert rows["random"].elo == 0.0 and rows["random"].ci_low == rows["random"].ci_high == 0.0
    assert sum(r.games for r in rows.values()) == 2 * len(games)
