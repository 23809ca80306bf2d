"""What rollout actors and learners ask of the league, and nothing more.

The league service (league/) answers over gRPC; `league.client.LeagueClient` implements
both protocols below, and the wiring (cluster/) hands one to each actor and learner. They
never import the league, so a job without opponents (a goal-conditioned job), a test, or
another matchmaker can stand in with any object of this shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class LeagueError(RuntimeError):
    """A league call failed; `code` is the gRPC status name (e.g. "NOT_FOUND",
    "UNAVAILABLE": a league that is down or restarting, worth retrying)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"league: {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Match:
    match_id: str
    player_a: str
    player_b: str
    kind: str  # "training" | "eval"

    @property
    def self_play(self) -> bool:
        """player_b is the learner's latest self."""
        return self.player_a == self.player_b


@dataclass(frozen=True)
class ResultReport:
    """One finished match. Reports are idempotent by `match_id`."""

    match_id: str
    player_a: str
    player_b: str
    outcome: str  # "a_win" | "b_win" | "draw"
    a_version: int = 0  # the weight version that played side a (training matches)
    kind: str = "training"
    steps: int = 0


@dataclass(frozen=True)
class EvaluationReport:
    """One greedy evaluation episode of a goal job. Reports are idempotent by
    `episode_id`."""

    episode_id: str
    player: str  # the learner lineage whose weights played it
    version: int  # the weight version that played it
    steps_trained: int  # its learner's trained steps when it published that version
    success: bool


@dataclass(frozen=True)
class SnapshotAdvice:
    due: bool
    reset: bool  # restart from the seed weights after the snapshot
    reason: str


class ActorLeague(Protocol):
    """A rollout actor's league: matches to play, results to report."""

    def sample_opponents(
        self, player: str, count: int, opponent_lineage: str = ""
    ) -> list[Match]: ...

    def sample_opponent(self, player: str, opponent_lineage: str = "") -> Match: ...

    def sample_eval_match(self, lineage_a: str = "", lineage_b: str = "") -> Match: ...

    def report_results(self, results: Sequence[ResultReport]) -> list[bool]:
        """Per result: True if applied, False if its match id was already recorded."""
        ...

    @property
    def retries(self) -> int:
        """Calls retried after a transient failure so far."""
        ...


class GoalLeague(Protocol):
    """A goal job's actor's league: no opponents, only evaluation episodes to record."""

    def report_evaluations(self, episodes: Sequence[EvaluationReport]) -> int:
        """Records up to 1024 episodes (all or none); returns how many were new."""
        ...


class LearnerLeague(Protocol):
    """A learner's league: it registers its lineage and freezes snapshots when told."""

    def register_player(self, name: str, kind: str = "learner", role: str = "") -> object: ...

    def snapshot_due(
        self, lineage: str, versions_since: int, every_versions: int
    ) -> SnapshotAdvice: ...

    def register_snapshot(self, lineage: str, version: int) -> str:
        """Freezes `lineage` at `version`; returns the snapshot's player id."""
        ...
