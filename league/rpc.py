"""What the servicer shares with the wire: the enum tables between records and protobuf,
the Player message, and how a handler refuses a request (Rejected becomes a one-line gRPC
status; database errors become INTERNAL, logged here, never shown as a traceback)."""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from core.players import Role
from league import league_pb2 as pb
from league.openskill_ratings import SkillRating
from league.records import MatchKind, Outcome, PlayerKind, PlayerRecord
from league.reports import HistoryReport
from league.standings import Standing
from league.store import StoreError

log = logging.getLogger("league.service")  # the servicer's logger: its errors, its name

KIND_TO_PB = {
    PlayerKind.LEARNER: pb.PLAYER_KIND_LEARNER,
    PlayerKind.SNAPSHOT: pb.PLAYER_KIND_SNAPSHOT,
    PlayerKind.BUILTIN: pb.PLAYER_KIND_BUILTIN,
}
KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
ROLE_TO_PB = {
    Role.NONE: pb.PLAYER_ROLE_UNSPECIFIED,
    Role.MAIN: pb.PLAYER_ROLE_MAIN,
    Role.MAIN_EXPLOITER: pb.PLAYER_ROLE_MAIN_EXPLOITER,
    Role.LEAGUE_EXPLOITER: pb.PLAYER_ROLE_LEAGUE_EXPLOITER,
}
ROLE_FROM_PB = {v: k for k, v in ROLE_TO_PB.items()}
KIND_NAME_TO_PB = {k.value: v for k, v in KIND_TO_PB.items()}
OUTCOME_FROM_PB = {
    pb.OUTCOME_A_WIN: Outcome.A_WIN,
    pb.OUTCOME_B_WIN: Outcome.B_WIN,
    pb.OUTCOME_DRAW: Outcome.DRAW,
}
MATCH_KIND_TO_PB = {MatchKind.TRAINING: pb.MATCH_KIND_TRAINING, MatchKind.EVAL: pb.MATCH_KIND_EVAL}
MATCH_KIND_FROM_PB = {v: k for k, v in MATCH_KIND_TO_PB.items()}


# Most matches or results one batched call (SampleOpponents, ReportResults) carries.
MAX_BATCH = 1024


class Rejected(Exception):
    """A request the league refuses, with the status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_Req = TypeVar("_Req")
T = TypeVar("T")


def rpc(method: Callable[[Any, _Req], Any]) -> Callable[[Any, _Req, grpc.ServicerContext], Any]:
    """Turns Rejected and database errors into one-line gRPC statuses."""

    @functools.wraps(method)
    def handler(self: Any, request: _Req, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request)
        except Rejected as exc:
            context.abort(exc.code, exc.message)
        except (sqlite3.Error, StoreError) as exc:
            log.exception("league database error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"league database error: {exc}")

    return handler


def invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def player_to_pb(p: PlayerRecord) -> pb.Player:
    created = Timestamp()
    created.FromNanoseconds(int(p.created_at * 1e9))
    return pb.Player(
        id=p.id,
        kind=KIND_TO_PB[p.kind],
        lineage=p.lineage,
        version=p.version,
        created_at=created,
        role=ROLE_TO_PB[p.role],
    )


def ratings_to_pb(rows: list[Standing], skills: dict[str, SkillRating]) -> list[pb.PlayerRating]:
    """GetRatings' rows: Elo standings, with OpenSkill fields for rated players."""
    return [
        pb.PlayerRating(
            player_id=s.player.id,
            kind=KIND_TO_PB[s.player.kind],
            elo=s.rating.elo,
            ci_low=s.rating.ci_low,
            ci_high=s.rating.ci_high,
            games=s.rating.games,
            wins=s.rating.wins,
            draws=s.rating.draws,
            losses=s.rating.losses,
            rated=s.rating.rated,
            **_skill_fields(skills.get(s.player.id) if s.rating.rated else None),
        )
        for s in rows
    ]


def _skill_fields(skill: SkillRating | None) -> dict[str, float]:
    """PlayerRating's openskill fields (all 0 when not rated)."""
    if skill is None:
        return {}
    return {
        "openskill_mu": skill.mu,
        "openskill_sigma": skill.sigma,
        "openskill_ordinal": skill.ordinal,
    }


def history_to_pb(report: HistoryReport) -> list[pb.RatingHistoryPoint]:
    """GetRatingHistory's points, each with its time as a protobuf Timestamp."""
    points = []
    for point in report.points:
        stamp = Timestamp()
        stamp.FromNanoseconds(int(point.time * 1e9))
        ratings = [
            pb.HistoryRating(
                player_id=r.player_id,
                elo=r.elo,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                games=r.games,
                kind=KIND_NAME_TO_PB.get(r.kind, pb.PLAYER_KIND_UNSPECIFIED),
            )
            for r in point.ratings
        ]
        points.append(pb.RatingHistoryPoint(time=stamp, results=point.results, ratings=ratings))
    return points


def validated_batch(items: Sequence[Any], validate: Callable[[Any], T], what: str) -> list[T]:
    """Each of 1..MAX_BATCH `items` validated; the first bad one refuses the whole batch
    (naming its index) before anything is recorded."""
    if not 1 <= len(items) <= MAX_BATCH:
        raise invalid(f"send between 1 and {MAX_BATCH} {what}, got {len(items)}")
    out = []
    for i, item in enumerate(items):
        try:
            out.append(validate(item))
        except Rejected as exc:
            raise Rejected(exc.code, f"{what}[{i}]: {exc.message}") from exc
    return out
