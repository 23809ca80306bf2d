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

from core.config import LeagueSettings
from core.players import Role
from league.quality import QualityScores
from league.records import PlayerKind, PlayerRecord
from league.sampling import SamplingRule, sampling_rule


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


def _is_exploiter(player: PlayerRecord) -> bool:
    return player.role in (Role.MAIN_EXPLOITER, Role.LEAGUE_EXPLOITER)


class Matchmaker:
    """Thread-safe: one seeded RNG behind a lock keeps runs reproducible. `quality`: the
    service's opponent quality scores, for rules that weigh by them (league/sampling.py)."""

    def __init__(self, settings: LeagueSettings, quality: QualityScores | None = None) -> None:
        self.self_play_fraction = settings.self_play_fraction
        self.builtin_fraction = settings.builtin_fraction
        self.rule = sampling_rule(settings.opponent_sampling)
        # How the builtin_fraction games pick among the builtins (None: like the rest).
        self.builtin_rule = sampling_rule(settings.builtin_sampling or settings.opponent_sampling)
        if quality is None and (self.rule.uses_quality or self.builtin_rule.uses_quality):
            raise ValueError("the sampling rules in use need the league's quality scores")
        self.pfsp_exponent = settings.pfsp_exponent
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self.quality = quality

    @staticmethod
    def needs_quality(settings: LeagueSettings) -> bool:
        """Whether either sampling rule of `settings` weighs by quality scores."""
        names = (settings.opponent_sampling, settings.builtin_sampling)
        return any(sampling_rule(name).uses_quality for name in names if name)

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
                return self._draw(learner, pool, win_rate, self.rule)
        lineage = opponent_lineage or learner.id
        pool = self.main_pool(learner, players, opponent_lineage)
        with self._lock:
            draw = self._rng.random()
            # With nobody frozen to play (no builtins configured), self-play is all there is.
            if not pool or draw < self.self_play_fraction:
                return lineage
            builtins = [p for p in pool if p.kind == PlayerKind.BUILTIN]
            if builtins and draw < self.self_play_fraction + self.builtin_fraction:
                return self._draw(learner, builtins, win_rate, self.builtin_rule)
            return self._draw(learner, pool, win_rate, self.rule)

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
                pool_weights = self._weights(learner, pool, win_rate, self.rule)
            if builtins:
                builtin_weights = self._weights(learner, builtins, win_rate, self.builtin_rule)
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
            return self._draw(learner, snapshots, win_rate, sampling_rule("pfsp_var"))

    def _draw(
        self,
        learner: PlayerRecord,
        pool: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
        rule: SamplingRule,
    ) -> str:
        """One of `pool` by `rule`'s weights; the caller holds the lock."""
        if not pool:
            raise NoOpponent(f"{learner.id!r}: nobody frozen to play yet")
        weights = self._weights(learner, pool, win_rate, rule)
        return self._rng.choices(pool, weights=weights)[0].id

    def _weights(
        self,
        learner: PlayerRecord,
        pool: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
        rule: SamplingRule,
    ) -> list[float]:
        """`rule`'s weight of each of `pool` (non-empty); the caller holds the lock."""
        rates = None
        if win_rate is not None:
            rates = lambda: [win_rate(learner.id, p.id) for p in pool]  # noqa: E731
        return rule.weights([p.id for p in pool], rates, self.quality, self.pfsp_exponent)

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
