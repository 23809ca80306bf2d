"""OpenAI Five's opponent quality scores: which past players are still worth playing.

Five played 80% of its games against its latest self and 20% against past versions,
drawn with probability softmax(q) over their quality scores q. Whenever the learner
beats past player i, q_i drops by eta / (N p_i), N the number of past players it could
have drawn and p_i the probability it had of drawing i: an importance-weighted update,
so a rarely drawn player that still loses falls as fast as a common one. A new player
starts at the highest score of those before it, so it is tried soon.

The scores are a pure function of the players' and results' arrival order, so the
service replays them from its database after a restart (`replay`) and gets the same
numbers it had.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence

from league.records import Outcome, PlayerRecord, ResultRecord

LEARNING_RATE = 0.01  # Five's eta
_MIN_PROBABILITY = 1e-9


class QualityScores:
    def __init__(self, learning_rate: float = LEARNING_RATE) -> None:
        if not learning_rate > 0.0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        self.learning_rate = learning_rate
        self._q: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, player: str) -> None:
        """A new past player: it starts at the best score so far (0 for the first)."""
        with self._lock:
            if player not in self._q:
                self._q[player] = max(self._q.values(), default=0.0)

    def quality(self, player: str) -> float:
        with self._lock:
            return self._q.get(player, 0.0)

    def probabilities(self, pool: Sequence[str]) -> list[float]:
        """softmax(q) over `pool`."""
        with self._lock:
            return _softmax([self._q.get(p, 0.0) for p in pool])

    def learner_won(self, opponent: str, pool: Sequence[str]) -> None:
        """The learner beat `opponent`, one of the `pool` it drew from."""
        if opponent not in pool:
            return
        with self._lock:
            probs = _softmax([self._q.get(p, 0.0) for p in pool])
            # A player beaten while it was still likely, reported after it became unlikely
            # (prefetched matches), can reach p = 0 in floating point: keep the step finite.
            p = max(probs[list(pool).index(opponent)], _MIN_PROBABILITY)
            self._q[opponent] = self._q.get(opponent, 0.0) - self.learning_rate / (len(pool) * p)


def replay(
    scores: QualityScores,
    players: Sequence[PlayerRecord],
    results: Iterable[ResultRecord],
    pool_of: Callable[[PlayerRecord, Sequence[PlayerRecord]], Sequence[PlayerRecord]],
) -> None:
    """Rebuilds `scores` from stored players and results in arrival order: each frozen
    player is added when it was registered, and each training win of a learner over a
    frozen player updates it against the pool (`pool_of(learner, players so far)`) the
    learner had then."""
    by_id = {p.id: p for p in players}
    joined = sorted(players, key=lambda p: p.created_at)
    k = 0
    present: list[PlayerRecord] = []
    for r in sorted(results, key=lambda r: r.created_at):
        while k < len(joined) and joined[k].created_at <= r.created_at:
            present.append(joined[k])
            if joined[k].frozen:
                scores.add(joined[k].id)
            k += 1
        learner, opponent = by_id.get(r.player_a), by_id.get(r.player_b)
        if learner is None or opponent is None or learner.frozen or not opponent.frozen:
            continue
        if r.outcome == Outcome.A_WIN:
            scores.learner_won(opponent.id, [p.id for p in pool_of(learner, present)])
    for p in joined[k:]:
        if p.frozen:
            scores.add(p.id)


def _softmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]
