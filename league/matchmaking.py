"""Who plays whom. The rules live here, apart from the gRPC plumbing, so PFSP and
AlphaStar roles can replace them later without touching the service.

Current rules:
- training: with probability `self_play_fraction` the learner plays its latest
  self; otherwise an opponent drawn uniformly from the frozen pool, which is the
  learner's own snapshots plus every builtin player (Bansal et al.'s uniform
  opponent sampling over older snapshots);
- evaluation: the frozen player with the fewest rated games (ties go to the
  newest, which is the one whose rating is least known) against a uniformly
  drawn other frozen player, so rating evidence spreads evenly.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence

from league.records import PlayerKind, PlayerRecord


class NoEvalPair(ValueError):
    """Fewer than two frozen players exist."""


class Matchmaker:
    """Thread-safe: one seeded RNG behind a lock keeps runs reproducible."""

    def __init__(self, self_play_fraction: float = 0.5, seed: int | None = None) -> None:
        if not 0.0 <= self_play_fraction <= 1.0:
            raise ValueError(f"self_play_fraction must be in [0, 1], got {self_play_fraction}")
        self.self_play_fraction = self_play_fraction
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def training_pool(
        self, learner: PlayerRecord, players: Sequence[PlayerRecord]
    ) -> list[PlayerRecord]:
        """The frozen players `learner` may face besides itself."""
        return [
            p
            for p in players
            if p.kind == PlayerKind.BUILTIN
            or (p.kind == PlayerKind.SNAPSHOT and p.lineage == learner.id)
        ]

    def training_opponent(self, learner: PlayerRecord, players: Sequence[PlayerRecord]) -> str:
        """An opponent id for `learner`; its own id means "latest self"."""
        pool = self.training_pool(learner, players)
        with self._lock:
            # With nobody frozen to play (no builtins configured), self-play is all there is.
            if not pool or self._rng.random() < self.self_play_fraction:
                return learner.id
            return self._rng.choice(pool).id

    def eval_pair(
        self, players: Sequence[PlayerRecord], games: Mapping[str, int]
    ) -> tuple[str, str]:
        """(player_a, player_b) for an evaluation match; `players` in registration order."""
        frozen = [p for p in players if p.frozen]
        if len(frozen) < 2:
            raise NoEvalPair(
                f"an eval match needs at least 2 frozen players, the league has {len(frozen)}"
            )
        # Registration order breaks ties: a later index is newer.
        order = {p.id: k for k, p in enumerate(frozen)}
        first = min(frozen, key=lambda p: (games.get(p.id, 0), -order[p.id]))
        others = [p for p in frozen if p.id != first.id]
        with self._lock:
            second = self._rng.choice(others)
        return first.id, second.id
