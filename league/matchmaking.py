"""Who plays whom: the league's rules, apart from the gRPC plumbing (service.py).

Training opponents depend on the learner's role (records.Role; AlphaStar's league):
- main agents (also every learner of a team game): with probability
  `self_play_fraction` the latest self; with probability `builtin_fraction` one of the
  builtin players (random, scripted bots: a floor under how often the learner meets
  them, however many snapshots pile up), drawn by `builtin_sampling` (default: the
  same weighting as below); otherwise a frozen player drawn from the pool
  of its own snapshots, every builtin and the exploiters' snapshots: uniformly (Bansal et
  al.'s opponent sampling over older snapshots), or by prioritized fictitious self-play
  (AlphaStar): opponent o with weight f(x_o), x_o the learner's recent win rate against
  o, f_hard(x) = (1 - x)^p (mostly the opponents it loses to) or f_var(x) = x (1 - x)
  (the ones it is even with), or OpenAI Five's softmax over quality scores that drop
  whenever the learner beats a player ("five", quality.py; Five used 80% self-play).
  Team games draw from the other team's lineage instead;
- main exploiters: a main agent's latest learner; while they win under 10% against it,
  its snapshots weighted by f_var instead;
- league exploiters: PFSP (the configured weighting) over every frozen player.
A lineage is frozen every N versions, or earlier when it beats every relevant opponent
by more than 70% (`snapshot_due`); exploiters then restart from their seed weights
(the learner does that).

Evaluation matches: the frozen player with the fewest rated games (ties go to the
newest, whose rating is the least known) against a uniformly drawn other frozen
player, so rating evidence spreads evenly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence

from core.players import Role
from league.quality import QualityScores
from league.records import PlayerKind, PlayerRecord


class NoEvalPair(ValueError):
    """Fewer than two frozen players exist."""


class NoOpponent(ValueError):
    """A learner's role has nobody to play (e.g. a main exploiter without main agents)."""


# AlphaStar's constants: a main exploiter that wins less than this against a main agent
# trains on that agent's snapshots; a lineage beating all relevant opponents by more than
# SNAPSHOT_WIN_RATE is frozen early.
EXPLOITER_MIN_WIN_RATE = 0.1
SNAPSHOT_WIN_RATE = 0.7
LEAGUE_EXPLOITER_RESET = 0.25


SAMPLING = ("uniform", "pfsp_hard", "pfsp_var", "five")


def pfsp_weight(sampling: str, win_rate: float, exponent: float = 2.0) -> float:
    """The PFSP priority of an opponent the learner beats with probability `win_rate`."""
    if sampling == "pfsp_hard":
        return (1.0 - win_rate) ** exponent
    if sampling == "pfsp_var":
        return win_rate * (1.0 - win_rate)
    if sampling in ("uniform", "five"):  # five weighs by quality scores (quality.py)
        return 1.0
    raise ValueError(f"unknown opponent sampling {sampling!r} (known: {', '.join(SAMPLING)})")


def check_fractions(self_play_fraction: float, builtin_fraction: float) -> None:
    """Both shares in [0, 1] and together at most 1."""
    shares = {"self_play_fraction": self_play_fraction, "builtin_fraction": builtin_fraction}
    for name, value in shares.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if self_play_fraction + builtin_fraction > 1.0:
        raise ValueError(
            f"self_play_fraction + builtin_fraction must be at most 1, got "
            f"{self_play_fraction} + {builtin_fraction}"
        )


def _is_exploiter(player: PlayerRecord) -> bool:
    return player.role in (Role.MAIN_EXPLOITER, Role.LEAGUE_EXPLOITER)


class Matchmaker:
    """Thread-safe: one seeded RNG behind a lock keeps runs reproducible."""

    def __init__(
        self,
        self_play_fraction: float = 0.5,
        seed: int | None = None,
        sampling: str = "uniform",
        pfsp_exponent: float = 2.0,
        builtin_fraction: float = 0.0,
        builtin_sampling: str | None = None,
    ) -> None:
        check_fractions(self_play_fraction, builtin_fraction)
        pfsp_weight(sampling, 0.5, pfsp_exponent)  # validates the name
        self.self_play_fraction = self_play_fraction
        self.builtin_fraction = builtin_fraction
        # How the builtin_fraction games pick among the builtins (None: like the rest).
        self.builtin_sampling = builtin_sampling or sampling
        pfsp_weight(self.builtin_sampling, 0.5, pfsp_exponent)
        self.sampling, self.pfsp_exponent = sampling, pfsp_exponent
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        # Sampling "five": the service's opponent quality scores (quality.py).
        self.quality: QualityScores | None = None

    def training_pool(self, lineage: str, players: Sequence[PlayerRecord]) -> list[PlayerRecord]:
        """The frozen players of `lineage` (its snapshots) plus every builtin."""
        return [
            p
            for p in players
            if p.kind == PlayerKind.BUILTIN
            or (p.kind == PlayerKind.SNAPSHOT and p.lineage == lineage)
        ]

    def training_opponent(
        self,
        learner: PlayerRecord,
        players: Sequence[PlayerRecord],
        opponent_lineage: str = "",
        win_rate: Callable[[str, str], float] | None = None,
    ) -> str:
        """An opponent id for `learner` by its role (module docstring). A learner
        lineage's id means its latest learner ("latest self" for the own lineage).
        `opponent_lineage` (team games) draws from that lineage instead of the own one.
        `win_rate(learner, opponent)` feeds PFSP."""
        if learner.role == Role.MAIN_EXPLOITER:
            return self._main_exploiter_opponent(learner, players, win_rate)
        if learner.role == Role.LEAGUE_EXPLOITER:
            pool = [p for p in players if p.frozen]
            with self._lock:
                return self._draw(learner, pool, win_rate, self.sampling)
        lineage = opponent_lineage or learner.id
        pool = self.main_pool(learner, players, opponent_lineage)
        with self._lock:
            draw = self._rng.random()
            # With nobody frozen to play (no builtins configured), self-play is all there is.
            if not pool or draw < self.self_play_fraction:
                return lineage
            builtins = [p for p in pool if p.kind == PlayerKind.BUILTIN]
            if builtins and draw < self.self_play_fraction + self.builtin_fraction:
                return self._draw(learner, builtins, win_rate, self.builtin_sampling)
            return self._draw(learner, pool, win_rate, self.sampling)

    def training_opponents(
        self,
        learner: PlayerRecord,
        players: Sequence[PlayerRecord],
        count: int,
        opponent_lineage: str = "",
        win_rate: Callable[[str, str], float] | None = None,
    ) -> list[str]:
        """`count` draws of `training_opponent` (the same draws, seed for seed), the pools
        and PFSP weights worked out once: no result arrives within one SampleOpponents
        call, and per draw they cost O(league size) (~150 snapshots in a 20-minute run)."""
        if learner.role in (Role.MAIN_EXPLOITER, Role.LEAGUE_EXPLOITER):
            return [
                self.training_opponent(learner, players, opponent_lineage, win_rate)
                for _ in range(count)
            ]
        lineage = opponent_lineage or learner.id
        pool = self.main_pool(learner, players, opponent_lineage)
        builtins = [p for p in pool if p.kind == PlayerKind.BUILTIN]
        split = self.self_play_fraction + self.builtin_fraction
        with self._lock:
            if pool:
                pool_weights = self._weights(learner, pool, win_rate, self.sampling)
            if builtins:
                builtin_weights = self._weights(learner, builtins, win_rate, self.builtin_sampling)
            picks = []
            for _ in range(count):
                draw = self._rng.random()
                if not pool or draw < self.self_play_fraction:
                    picks.append(lineage)
                elif builtins and draw < split:
                    picks.append(self._rng.choices(builtins, weights=builtin_weights)[0].id)
                else:
                    picks.append(self._rng.choices(pool, weights=pool_weights)[0].id)
        return picks

    def main_pool(
        self, learner: PlayerRecord, players: Sequence[PlayerRecord], opponent_lineage: str = ""
    ) -> list[PlayerRecord]:
        """The frozen players a main agent trains against: its lineage's (or, team games,
        `opponent_lineage`'s) snapshots, the builtins, and the exploiters' snapshots."""
        pool = self.training_pool(opponent_lineage or learner.id, players)
        if not opponent_lineage:
            pool += [p for p in players if p.kind == PlayerKind.SNAPSHOT and _is_exploiter(p)]
        return pool

    def _main_exploiter_opponent(
        self,
        learner: PlayerRecord,
        players: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
    ) -> str:
        """AlphaStar: a main exploiter plays the current main agents; while it wins less
        than 10% against the one drawn, it trains on that agent's snapshots it is even
        with (f_var) instead, which it can learn from."""
        mains = [p for p in players if p.kind == PlayerKind.LEARNER and p.role == Role.MAIN]
        if not mains:
            raise NoOpponent(f"main exploiter {learner.id!r}: the league has no main agent")
        with self._lock:
            target = self._rng.choice(mains)
            if win_rate is None or win_rate(learner.id, target.id) >= EXPLOITER_MIN_WIN_RATE:
                return target.id
            snapshots = [
                p for p in players if p.kind == PlayerKind.SNAPSHOT and p.lineage == target.id
            ]
            if not snapshots:
                return target.id
            return self._draw(learner, snapshots, win_rate, "pfsp_var")

    def _draw(
        self,
        learner: PlayerRecord,
        pool: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
        sampling: str,
    ) -> str:
        """One of `pool` by `sampling`'s weights; the caller holds the lock."""
        if not pool:
            raise NoOpponent(f"{learner.id!r}: nobody frozen to play yet")
        weights = self._weights(learner, pool, win_rate, sampling)
        return self._rng.choices(pool, weights=weights)[0].id

    def _weights(
        self,
        learner: PlayerRecord,
        pool: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
        sampling: str,
    ) -> list[float]:
        """`sampling`'s weight of each of `pool` (non-empty); the caller holds the lock."""
        if sampling == "five" and self.quality is not None:
            weights = self.quality.probabilities([p.id for p in pool])
        elif win_rate is None or sampling in ("uniform", "five"):
            weights = [1.0] * len(pool)
        else:
            weights = [
                pfsp_weight(sampling, win_rate(learner.id, p.id), self.pfsp_exponent) for p in pool
            ]
            # Everyone beaten (or all even under f_var's zeros): fall back to uniform.
            if sum(weights) <= 0.0:
                weights = [1.0] * len(pool)
        return weights

    def reset_after_snapshot(self, learner: PlayerRecord) -> bool:
        """AlphaStar: main exploiters always restart from their seed weights after a
        snapshot, league exploiters with probability 1/4, main agents never."""
        if learner.role == Role.MAIN_EXPLOITER:
            return True
        if learner.role == Role.LEAGUE_EXPLOITER:
            with self._lock:
                return self._rng.random() < LEAGUE_EXPLOITER_RESET
        return False

    def snapshot_due(
        self,
        learner: PlayerRecord,
        players: Sequence[PlayerRecord],
        versions_since: int,
        every_versions: int,
        win_rate: Callable[[str, str], float],
        threshold: float = SNAPSHOT_WIN_RATE,
    ) -> tuple[bool, str]:
        """(due, why) for freezing `learner` now (AlphaStar's rule): every `every_versions`
        versions, or earlier (after a tenth of that) once it beats every relevant opponent
        with more than `threshold`: main exploiters the main agents, league exploiters
        everyone frozen, main agents their training pool (`main_pool`)."""
        if versions_since >= every_versions:
            return True, f"{versions_since} versions since the last snapshot"
        if versions_since < max(1, every_versions // 10):
            return False, "too soon"
        if learner.role == Role.MAIN_EXPLOITER:
            relevant = [p for p in players if p.kind == PlayerKind.LEARNER and p.role == Role.MAIN]
        elif learner.role == Role.LEAGUE_EXPLOITER:
            relevant = [p for p in players if p.frozen]
        else:
            relevant = self.main_pool(learner, players)
        if not relevant:
            return False, "no relevant opponents"
        worst = min(relevant, key=lambda p: win_rate(learner.id, p.id))
        rate = win_rate(learner.id, worst.id)
        if rate > threshold:
            return True, f"win rate above {threshold:.0%} against all (lowest {rate:.0%})"
        return False, f"win rate {rate:.0%} against {worst.id}"

    def eval_pair(
        self,
        players: Sequence[PlayerRecord],
        games: Mapping[str, int],
        lineages: tuple[str, str] = ("", ""),
    ) -> tuple[str, str]:
        """(player_a, player_b) for an evaluation match; `players` in registration order.
        With `lineages` (team games) a is drawn from the first lineage's frozen players and
        b from the second's; otherwise both from all frozen players."""
        if lineages[0] or lineages[1]:
            side_a = self.training_pool(lineages[0], players)
            side_b = self.training_pool(lineages[1], players)
        else:
            side_a = side_b = [p for p in players if p.frozen]
        if len(side_a) < 1 or len(side_b) < 1 or len({p.id for p in side_a + side_b}) < 2:
            raise NoEvalPair(
                "an eval match needs two different frozen players, the league has "
                f"{len(side_a)} and {len(side_b)} to choose from"
            )
        # The player with the fewest rated games goes first; registration order breaks
        # ties (a later index is newer, so its rating is the least known).
        order = {p.id: k for k, p in enumerate(players)}
        first = min(side_a, key=lambda p: (games.get(p.id, 0), -order[p.id]))
        others = [p for p in side_b if p.id != first.id]
        with self._lock:
            second = self._rng.choice(others)
        return first.id, second.id
