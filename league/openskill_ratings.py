"""OpenSkill ratings (Weng-Lin Bayesian approximation, Plackett-Luce model), reported
next to Elo for team games and anyone who thinks in TrueSkill terms.

Each player's skill is a Gaussian (mu, sigma), updated one game at a time: a win ranks
the winner first, a draw ranks both sides equal (a tie). Every player in this league is
one entity (a snapshot of one team's lineage, or a builtin), so a game is two teams of
one.

Unlike the Elo fit (ratings.py), which fits all results at once, these updates are
sequential, so the numbers depend on the order the games are applied in: the same
results in another order give (slightly) different mu and sigma. We apply them in
arrival order, the one order every reader of the league agrees on (the store's row
order), which makes them reproducible after a restart, but Elo stays the headline
number because it has no such dependence.

Same rated-games rule as standings.py: only games between two frozen players count.

Pure computation: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from openskill.models import PlackettLuce, PlackettLuceRating

from league.records import Outcome, PlayerRecord, ResultRecord

# ordinal = mu - Z * sigma: the skill the player exceeds with ~99.7% probability, the
# conservative single number OpenSkill (like TrueSkill's leaderboards) ranks by.
ORDINAL_Z = 3.0

# Ranks per outcome, side A first: lower is better, equal ranks are a tie.
_RANKS = {Outcome.A_WIN: [1, 2], Outcome.B_WIN: [2, 1], Outcome.DRAW: [1, 1]}


@dataclass(frozen=True)
class SkillRating:
    player_id: str
    mu: float
    sigma: float
    games: int

    @property
    def ordinal(self) -> float:
        return self.mu - ORDINAL_Z * self.sigma


class OpenSkillLedger:
    """OpenSkill ratings folded over games one at a time (not thread-safe: callers that
    share one lock it). The model keeps OpenSkill's defaults (mu 25, sigma 25/3)."""

    def __init__(self) -> None:
        self._model = PlackettLuce()
        self._ratings: dict[str, PlackettLuceRating] = {}
        self._games: dict[str, int] = {}

    def add(self, player_a: str, player_b: str, outcome: Outcome | str) -> None:
        """Applies one game; a player against itself says nothing and is skipped."""
        if player_a == player_b:
            return
        ranks = _RANKS[Outcome(outcome)]
        teams = [[self._rating(player_a)], [self._rating(player_b)]]
        [[new_a], [new_b]] = self._model.rate(teams, ranks=ranks)
        self._ratings[player_a], self._ratings[player_b] = new_a, new_b
        for p in (player_a, player_b):
            self._games[p] = self._games.get(p, 0) + 1

    def extend(self, results: Iterable[ResultRecord], frozen: Collection[str]) -> int:
        """Applies the rated ones of `results` (both sides in `frozen`), in the given
        order; returns how many were applied."""
        applied = 0
        for r in results:
            if r.player_a in frozen and r.player_b in frozen and r.player_a != r.player_b:
                self.add(r.player_a, r.player_b, r.outcome)
                applied += 1
        return applied

    def ratings(self) -> dict[str, SkillRating]:
        """Every player with at least one applied game."""
        return {
            p: SkillRating(p, float(r.mu), float(r.sigma), self._games[p])
            for p, r in self._ratings.items()
        }

    def _rating(self, player: str) -> PlackettLuceRating:
        rating = self._ratings.get(player)
        if rating is None:
            rating = self._ratings[player] = self._model.rating(name=player)
        return rating


def openskill_ratings(
    players: Iterable[PlayerRecord], results: Iterable[ResultRecord]
) -> dict[str, SkillRating]:
    """OpenSkill ratings of every player with rated games, from `results` applied in the
    order given (pass them in arrival order, as LeagueStore.results() returns them)."""
    ledger = OpenSkillLedger()
    ledger.extend(results, {p.id for p in players if p.frozen})
    return ledger.ratings()
