"""Elo ratings by Bradley-Terry maximum likelihood over all results.

Model: P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)). A draw counts as half a
win for each side, so the fit uses only each pair's total score; the
likelihood is then a quasi-likelihood whose intervals are slightly
conservative when draws are common (a draw varies less than a coin flip).

All results are fitted at once, so the ratings do not depend on arrival order
(unlike incremental Elo updates). Prior: `prior_draws` virtual draws of every
rated player against the anchor (BayesElo's approach). It keeps players with
only wins or only losses finite, connects players who never met the anchor's
component, and makes the Hessian invertible; its pull towards the anchor is one
game's worth of evidence, negligible once a player has tens of games.

The anchor is fixed at exactly 0 and is the reference of every interval (95%,
from the inverse of the negative Hessian of the log-posterior at the optimum),
so its own interval has zero width. Players without games are not fitted:
`rated=False`, elo 0, interval (0, 0).

Pure functions: no I/O, no project imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

ELO_PER_NAT = 400.0 / math.log(10.0)  # Elo points per unit of log-odds
Z95 = 1.959963984540054  # two-sided 95% normal quantile
_MAX_NEWTON_STEPS = 200
_TOLERANCE_ELO = 1e-7


@dataclass(frozen=True)
class Tally:
    """Games of one ordered pair (a, b), counted from a's side."""

    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        return self.wins + 0.5 * self.draws

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.wins + other.wins, self.draws + other.draws, self.losses + other.losses)

    def flipped(self) -> Tally:
        return Tally(self.losses, self.draws, self.wins)


@dataclass(frozen=True)
class Rating:
    player_id: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    wins: int
    draws: int
    losses: int
    rated: bool

    @property
    def stderr(self) -> float:
        return (self.ci_high - self.ci_low) / (2.0 * Z95)


@dataclass(frozen=True)
class EloFit:
    """Ratings plus the covariance needed to compare any two players."""

    anchor: str
    ratings: dict[str, Rating]
    index: dict[str, int]  # fitted non-anchor player -> row of `covariance`
    covariance: np.ndarray  # Elo^2, over the fitted players except the anchor

    def diff_interval(self, a: str, b: str, z: float = Z95) -> tuple[float, float]:
        """Interval for elo(a) - elo(b); both must be rated (or the anchor)."""
        for p in (a, b):
            if p != self.anchor and p not in self.index:
                raise KeyError(f"{p!r} is not rated")
        diff = self.ratings[a].elo - self.ratings[b].elo
        var = self._var(a) + self._var(b) - 2.0 * self._cov(a, b)
        half = z * math.sqrt(max(var, 0.0))
        return diff - half, diff + half

    def _var(self, p: str) -> float:
        return self._cov(p, p)

    def _cov(self, a: str, b: str) -> float:
        if a == self.anchor or b == self.anchor:
            return 0.0
        return float(self.covariance[self.index[a], self.index[b]])


def expected_score(elo_a: float, elo_b: float) -> float:
    """Model probability that a beats b (draws as half wins)."""
    return 1.0 / (1.0 + 10.0 ** ((elo_b - elo_a) / 400.0))


def tally_results(results: Iterable[tuple[str, str, float]]) -> dict[tuple[str, str], Tally]:
    """Counts (a, b, score_a) results per ordered pair; score_a is 1, 0.5 or 0."""
    tallies: dict[tuple[str, str], Tally] = {}
    by_score = {1.0: Tally(wins=1), 0.5: Tally(draws=1), 0.0: Tally(losses=1)}
    for a, b, score_a in results:
        one = by_score.get(float(score_a))
        if one is None:
            raise ValueError(f"score for {a} vs {b} must be 1, 0.5 or 0, got {score_a!r}")
        tallies[(a, b)] = tallies.get((a, b), Tally()) + one
    return tallies


def fit_elo(
    results: Iterable[tuple[str, str, float]],
    players: Iterable[str],
    anchor: str = "random",
    prior_draws: float = 1.0,
) -> dict[str, Rating]:
    """Ratings of `players` (and anyone in `results`) from (a, b, score_a) triples."""
    return fit(tally_results(results), players, anchor, prior_draws).ratings


def fit(
    tallies: Mapping[tuple[str, str], Tally],
    players: Iterable[str],
    anchor: str = "random",
    prior_draws: float = 1.0,
) -> EloFit:
    """Maximum a-posteriori Elo from per-pair tallies (see the module docstring)."""
    if not prior_draws > 0.0:
        raise ValueError("prior_draws must be > 0 (it keeps the fit finite and identifiable)")
    totals = player_totals(tallies)
    everyone = set(players) | {p for pair in tallies for p in pair}
    if anchor not in everyone:
        raise ValueError(f"anchor {anchor!r} is not a player")
    # Sorted ids make the arithmetic (and so the result) independent of input order.
    fitted = sorted(p for p in everyone if totals.get(p, Tally()).games > 0 and p != anchor)
    ids = [anchor, *fitted]
    elo, cov = _newton(ids, tallies, prior_draws) if fitted else (np.zeros(1), np.zeros((0, 0)))

    ratings: dict[str, Rating] = {}
    for p in sorted(everyone):
        t = totals.get(p, Tally())
        if p in fitted:
            i = ids.index(p)
            half = Z95 * math.sqrt(max(cov[i - 1, i - 1], 0.0))
            value = float(elo[i])
            ratings[p] = Rating(
                p, value, value - half, value + half, t.games, t.wins, t.draws, t.losses, rated=True
            )
        else:  # the anchor (exactly 0 by definition) or a player with no games
            ratings[p] = Rating(
                p, 0.0, 0.0, 0.0, t.games, t.wins, t.draws, t.losses, rated=t.games > 0
            )
    index = {p: k for k, p in enumerate(fitted)}
    return EloFit(anchor=anchor, ratings=ratings, index=index, covariance=cov)


def player_totals(tallies: Mapping[tuple[str, str], Tally]) -> dict[str, Tally]:
    """Each player's W/D/L over all its games, self-games left out."""
    totals: dict[str, Tally] = {}
    for (a, b), t in tallies.items():
        if a == b:
            continue  # a player against itself says nothing about its strength
        totals[a] = totals.get(a, Tally()) + t
        totals[b] = totals.get(b, Tally()) + t.flipped()
    return totals


def _newton(
    ids: list[str], tallies: Mapping[tuple[str, str], Tally], prior_draws: float
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (elo per id, covariance over ids[1:]) with ids[0] (the anchor) at 0."""
    n = len(ids)
    pos = {p: k for k, p in enumerate(ids)}
    score = np.zeros((n, n))  # score[i, j]: points i took from j
    games = np.zeros((n, n))  # symmetric game counts
    for (a, b), t in tallies.items():
        if a == b or a not in pos or b not in pos:
            continue
        i, j = pos[a], pos[b]
        score[i, j] += t.score
        score[j, i] += t.games - t.score
        games[i, j] += t.games
        games[j, i] += t.games
    score[1:, 0] += 0.5 * prior_draws  # virtual draws against the anchor
    score[0, 1:] += 0.5 * prior_draws
    games[1:, 0] += prior_draws
    games[0, 1:] += prior_draws

    theta = np.zeros(n)  # log-odds scale; theta[0] stays 0
    objective = _log_posterior(theta, score)
    for _ in range(_MAX_NEWTON_STEPS):
        grad, neg_hess = _derivatives(theta, score, games)
        step = np.linalg.solve(neg_hess[1:, 1:], grad[1:])
        # Step halving guards the first steps when some players are far from 0.
        for _ in range(60):
            trial = theta.copy()
            trial[1:] += step
            trial_objective = _log_posterior(trial, score)
            if trial_objective >= objective - 1e-12 * abs(objective):
                break
            step = step / 2.0
        theta, objective = trial, trial_objective
        if np.max(np.abs(step)) * ELO_PER_NAT < _TOLERANCE_ELO:
            break
    else:
        raise RuntimeError("Elo fit did not converge")
    _, neg_hess = _derivatives(theta, score, games)
    cov = np.linalg.inv(neg_hess[1:, 1:]) * ELO_PER_NAT**2
    return theta * ELO_PER_NAT, cov


def _log_posterior(theta: np.ndarray, score: np.ndarray) -> float:
    diff = theta[:, None] - theta[None, :]
    return float(np.sum(score * log_expit(diff)))


def _derivatives(
    theta: np.ndarray, score: np.ndarray, games: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    p = expit(theta[:, None] - theta[None, :])  # p[i, j] = P(i beats j)
    grad = np.sum(score - games * p, axis=1)
    weight = games * p * p.T
    neg_hess = -weight
    neg_hess[np.diag_indices_from(neg_hess)] = np.sum(weight, axis=1) - np.diag(weight)
    return grad, neg_hess
