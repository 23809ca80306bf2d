"""Who plays whom. The rules live here, apart from the gRPC plumbing, so PFSP and
AlphaStar roles can replace them later without touching the service.

Current rules:
- training: with probability `self_play_fraction` the learner plays its latest
  self; otherwise an opponent drawn from the frozen pool, which is the learner's
  own snapshots plus every builtin player: uniformly (Bansal et al.'s opponent
  sampling over older snapshots), or by prioritized fictitious self-play (AlphaStar):
  opponent o with weight f(x_o), x_o the learner's recent win rate against o,
  f_hard(x) = (1 - x)^p (mostly the opponents it loses to) or f_var(x) = x (1 - x)
  (the ones it is even with);
- evaluation: the frozen player with the fewest rated games (ties go to the
  newest, which is the one whose rating is least known) against a uniformly
  drawn other frozen player, so rating evidence spreads evenly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence

from league.records import PlayerKind, PlayerRecord


class NoEvalPair(ValueError):
    """Fewer than two frozen players exist."""


SAMPLING = ("uniform", "pfsp_hard", "pfsp_var")


def pfsp_weight(sampling: str, win_rate: float, exponent: float = 2.0) -> float:
    """The PFSP priority of an opponent the learner beats with probability `win_rate`."""
    if sampling == "pfsp_hard":
        return (1.0 - win_rate) ** exponent
    if sampling == "pfsp_var":
        return win_rate * (1.0 - win_rate)
    if sampling == "uniform":
        return 1.0
    raise ValueError(f"unknown opponent sampling {sampling!r} (known: {', '.join(SAMPLING)})")


class Matchmaker:
    """Thread-safe: one seeded RNG behind a lock keeps runs reproducible."""

    def __init__(
        self,
        self_play_fraction: float = 0.5,
        seed: int | None = None,
        sampling: str = "uniform",
        pfsp_exponent: float = 2.0,
    ) -> None:
        if not 0.0 <= self_play_fraction <= 1.0:
            raise ValueError(f"self_play_fraction must be in [0, 1], got {self_play_fraction}")
        pfsp_weight(sampling, 0.5, pfsp_exponent)  # validates the name
        self.self_play_fraction = self_play_fraction
        self.sampling, self.pfsp_exponent = sampling, pfsp_exponent
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def training_pool(self, lineage: str, players: Sequence[PlayerRecord]) -> list[PlayerRecord]:
        """The frozen players of `lineage` (its snapshots) plus every builtin."""
        return [
            p
            for p in players
            if p.kind == PlayerKind.BUILTIN
            or (p.kind == PlayerKind.SNAPSHOT and p.lineage == lineage)
        ]

    def opponent_weights(
        self,
        learner: PlayerRecord,
        pool: Sequence[PlayerRecord],
        win_rate: Callable[[str, str], float] | None,
    ) -> list[float]:
        """Sampling weights over `pool` (uniform when no win rates are known)."""
        if win_rate is None or self.sampling == "uniform":
            return [1.0] * len(pool)
        weights = [
            pfsp_weight(self.sampling, win_rate(learner.id, p.id), self.pfsp_exponent) for p in pool
        ]
        # Everyone beaten (or all even under f_var's zeros): fall back to uniform.
        return weights if sum(weights) > 0.0 else [1.0] * len(pool)

    def training_opponent(
        self,
        learner: PlayerRecord,
        players: Sequence[PlayerRecord],
        opponent_lineage: str = "",
        win_rate: Callable[[str, str], float] | None = None,
    ) -> str:
        """An opponent id for `learner`, drawn from `opponent_lineage` (default its own):
        that lineage's id means its latest learner ("latest self" for the own lineage).
        `win_rate(learner, opponent)` feeds PFSP."""
        lineage = opponent_lineage or learner.id
        pool = self.training_pool(lineage, players)
        weights = self.opponent_weights(learner, pool, win_rate)
        with self._lock:
            # With nobody frozen to play (no builtins configured), self-play is all there is.
            if not pool or self._rng.random() < self.self_play_fraction:
                return lineage
            return self._rng.choices(pool, weights=weights)[0].id

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
