"""Plain records and input rules shared by the store, the service and the table.

Kinds and outcomes are lower-case strings here (and in SQLite) so the database
reads well in `sqlite3` and `--json` output; the proto enums map onto them in
service.py and client.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from core.players import Role


class PlayerKind(StrEnum):
    LEARNER = "learner"
    SNAPSHOT = "snapshot"
    BUILTIN = "builtin"


class Outcome(StrEnum):
    A_WIN = "a_win"
    B_WIN = "b_win"
    DRAW = "draw"


class MatchKind(StrEnum):
    TRAINING = "training"
    EVAL = "eval"


FROZEN_KINDS = frozenset({PlayerKind.SNAPSHOT, PlayerKind.BUILTIN})

# Match ids travel in logs, Redis keys and URLs, so they stay in a safe alphabet.
_MATCH_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def match_id_problem(match_id: str) -> str | None:
    """Why `match_id` is unusable, or None when it is fine."""
    if _MATCH_ID_RE.fullmatch(match_id):
        return None
    if not match_id:
        return "match_id is empty"
    return f"invalid match_id {match_id[:40]!r}: use 1-128 characters of [A-Za-z0-9_-]"


def score_of(outcome: Outcome) -> float:
    """Side A's score: draws count as half a win (the rating model's convention)."""
    return {Outcome.A_WIN: 1.0, Outcome.DRAW: 0.5, Outcome.B_WIN: 0.0}[outcome]


@dataclass(frozen=True)
class EvaluationRecord:
    """A greedy evaluation episode of a goal job (no opponent): which lineage's weights
    played it (`version`, published after `steps_trained` trained steps), and whether it
    reached its goal."""

    episode_id: str  # as a match id: 1-128 characters of [A-Za-z0-9_-]
    player: str
    version: int
    steps_trained: int
    success: bool
    created_at: float = 0.0


@dataclass(frozen=True)
class PlayerRecord:
    id: str
    kind: PlayerKind
    lineage: str  # learner: its own id; snapshot: its learner; builtin: ""
    version: int  # snapshot: frozen policy version; otherwise 0
    created_at: float  # unix seconds
    role: Role = Role.NONE  # learner and snapshot: the lineage's role; builtin: none

    @property
    def frozen(self) -> bool:
        return self.kind in FROZEN_KINDS


@dataclass(frozen=True)
class ResultRecord:
    match_id: str
    player_a: str
    player_b: str
    outcome: Outcome
    a_version: int
    kind: MatchKind
    steps: int
    created_at: float = 0.0

    def same_report(self, other: ResultRecord) -> bool:
        """True when two reports describe the same match (timestamps aside)."""
        return (
            self.player_a,
            self.player_b,
            self.outcome,
            self.a_version,
            self.kind,
            self.steps,
        ) == (
            other.player_a,
            other.player_b,
            other.outcome,
            other.a_version,
            other.kind,
            other.steps,
        )
