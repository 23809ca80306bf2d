"""The League gRPC servicer: validates requests, maps proto <-> records, and
delegates to the store, the matchmaker and the ratings. Server lifecycle, auth
and health live in server.py.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from league import league_pb2 as pb
from league import league_pb2_grpc
from league.matchmaking import Matchmaker, NoEvalPair, NoOpponent, check_fractions, pfsp_weight
from league.openskill_ratings import OpenSkillLedger, SkillRating
from league.payoff import Payoff
from league.quality import QualityScores, replay
from league.records import (
    FROZEN_KINDS,
    MatchKind,
    Outcome,
    PlayerKind,
    PlayerRecord,
    ResultRecord,
    Role,
    match_id_problem,
    name_problem,
    snapshot_id,
)
from league.standings import rated_games, standings
from league.store import LeagueStore, StoreError
from league.views import UnknownPlayer, build_history, build_payoff, check_filter, check_points

log = logging.getLogger(__name__)

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
_KIND_NAME_TO_PB = {k.value: v for k, v in KIND_TO_PB.items()}
OUTCOME_FROM_PB = {
    pb.OUTCOME_A_WIN: Outcome.A_WIN,
    pb.OUTCOME_B_WIN: Outcome.B_WIN,
    pb.OUTCOME_DRAW: Outcome.DRAW,
}
MATCH_KIND_TO_PB = {MatchKind.TRAINING: pb.MATCH_KIND_TRAINING, MatchKind.EVAL: pb.MATCH_KIND_EVAL}
MATCH_KIND_FROM_PB = {v: k for k, v in MATCH_KIND_TO_PB.items()}


@dataclass(frozen=True)
class LeagueSettings:
    """How the league matches and rates players.

    `builtins` are created at startup; "random" (uniform random legal moves) is
    the usual rating anchor. `seed` seeds the matchmaker's RNG (None: random).
    """

    self_play_fraction: float = 0.5
    # Share of training games against builtins only (matchmaking.py).
    builtin_fraction: float = 0.0
    anchor: str = "random"
    seed: int | None = None
    builtins: tuple[str, ...] = ("random",)
    # "uniform" | "pfsp_hard" | "pfsp_var" (matchmaking.py); payoff_decay weighs recent
    # games of a pair more (payoff.py).
    opponent_sampling: str = "uniform"
    # How builtin_fraction games pick among the builtins; None: as opponent_sampling.
    builtin_sampling: str | None = None
    pfsp_exponent: float = 2.0
    payoff_decay: float = 0.99
    # What a draw scores for both sides in the win rates PFSP reads (payoff.py).
    draw_score: float = 0.5

    def __post_init__(self) -> None:
        check_fractions(self.self_play_fraction, self.builtin_fraction)
        # Checked here, not only where they are used, so a bad setting fails before the
        # server binds (and `league serve` can answer with a one-line error).
        if not self.pfsp_exponent > 0.0:
            raise ValueError(f"pfsp_exponent must be > 0, got {self.pfsp_exponent}")
        pfsp_weight(self.opponent_sampling, 0.5, self.pfsp_exponent)  # known name?
        if self.builtin_sampling is not None:
            pfsp_weight(self.builtin_sampling, 0.5, self.pfsp_exponent)
        if not 0.0 < self.payoff_decay <= 1.0:
            raise ValueError(f"payoff_decay must be in (0, 1], got {self.payoff_decay}")
        if not 0.0 <= self.draw_score <= 1.0:
            raise ValueError(f"draw_score must be in [0, 1], got {self.draw_score}")
        for name in (self.anchor, *self.builtins):
            problem = name_problem(name)
            if problem:
                raise ValueError(problem)


# Most matches or results one batched call (SampleOpponents, ReportResults) carries.
MAX_BATCH = 1024


class Rejected(Exception):
    """A request the league refuses, with the status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_Req = TypeVar("_Req")


def _rpc(method: Callable[[Any, _Req], Any]) -> Callable[[Any, _Req, grpc.ServicerContext], Any]:
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


def _invalid(message: str) -> Rejected:
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


class LeagueServicer(league_pb2_grpc.LeagueServicer):
    def __init__(self, store: LeagueStore, settings: LeagueSettings) -> None:
        self._store = store
        self._settings = settings
        self._matchmaker = Matchmaker(
            settings.self_play_fraction,
            settings.seed,
            settings.opponent_sampling,
            settings.pfsp_exponent,
            settings.builtin_fraction,
            settings.builtin_sampling,
        )
        self._payoff = Payoff(settings.payoff_decay, store.results(), settings.draw_score)
        if settings.opponent_sampling == "five":
            self._quality: QualityScores | None = QualityScores()
            replay(
                self._quality,
                store.players(),
                store.results(),
                lambda learner, players: self._matchmaker.main_pool(learner, players),
            )
            self._matchmaker.quality = self._quality
        else:
            self._quality = None
        # Rated games per player, kept in memory: counting them in SQL on every
        # SampleEvalMatch cost O(all results) per call and slowed a long run down.
        self._rated_lock = threading.Lock()
        self._rated_games: Counter[str] = Counter(rated_games(store))
        # (learner, opponent) -> SampleOpponent answers since this process started: what
        # the matchmaker actually picked, for /metrics (league/dashboard.py). Not stored:
        # like any Prometheus counter it restarts at 0 with the process.
        self._samples_lock = threading.Lock()
        self._opponent_samples: Counter[tuple[str, str]] = Counter()
        # OpenSkill is sequential, so it is folded over the stored results in row order
        # (lazily, on GetRatings): the same numbers as a fresh replay after a restart.
        self._skills_lock = threading.Lock()
        self._skills = OpenSkillLedger()
        self._skills_seen = 0  # stored results folded so far
        for name in settings.builtins:
            player, _ = store.add_player(name, PlayerKind.BUILTIN)
            if self._quality is not None:
                self._quality.add(player.id)
            if player.kind != PlayerKind.BUILTIN:
                raise ValueError(f"builtin {name!r} is already registered as a {player.kind}")

    def _player(self, player_id: str, field: str) -> PlayerRecord:
        if not player_id:
            raise _invalid(f"{field} is empty")
        player = self._store.get_player(player_id)
        if player is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"unknown player {player_id!r} ({field})")
        return player

    @_rpc
    def RegisterPlayer(self, request: pb.RegisterPlayerRequest) -> pb.RegisterPlayerResponse:
        problem = name_problem(request.name)
        if problem:
            raise _invalid(problem)
        kind = KIND_FROM_PB.get(request.kind)
        if kind is None:
            raise _invalid("kind must be PLAYER_KIND_LEARNER or PLAYER_KIND_BUILTIN")
        if kind == PlayerKind.SNAPSHOT:
            raise _invalid("snapshots are registered with RegisterSnapshot(lineage, version)")
        role = ROLE_FROM_PB.get(request.role)
        if role is None:
            raise _invalid(f"unknown role {request.role}")
        if kind == PlayerKind.LEARNER:
            role = role or Role.MAIN
        elif role:
            raise _invalid("only LEARNER players have a role")
        lineage = request.name if kind == PlayerKind.LEARNER else ""
        player, created = self._store.add_player(request.name, kind, lineage, role=role)
        if player.kind != kind:
            raise Rejected(
                grpc.StatusCode.ALREADY_EXISTS,
                f"player {request.name!r} already exists as a {player.kind}, not a {kind}",
            )
        if player.role != role:
            raise Rejected(
                grpc.StatusCode.ALREADY_EXISTS,
                f"learner {request.name!r} already exists as a {player.role.value}, "
                f"not a {role.value}",
            )
        if created:
            log.info("registered %s player %s", kind, player.id)
        return pb.RegisterPlayerResponse(player=player_to_pb(player), created=created)

    @_rpc
    def RegisterSnapshot(self, request: pb.RegisterSnapshotRequest) -> pb.RegisterSnapshotResponse:
        if request.version < 0:
            raise _invalid(f"version must be >= 0, got {request.version}")
        lineage = self._player(request.lineage, "lineage")
        if lineage.kind != PlayerKind.LEARNER:
            raise Rejected(
                grpc.StatusCode.NOT_FOUND,
                f"no LEARNER named {request.lineage!r} ({request.lineage!r} is a {lineage.kind})",
            )
        player, created = self._store.add_player(
            snapshot_id(lineage.id, request.version),
            PlayerKind.SNAPSHOT,
            lineage.id,
            request.version,
        )
        if created and self._quality is not None:
            self._quality.add(player.id)
        if created:
            log.info("registered snapshot %s", player.id)
        return pb.RegisterSnapshotResponse(player=player_to_pb(player), created=created)

    @_rpc
    def ListPlayers(self, request: pb.ListPlayersRequest) -> pb.ListPlayersResponse:
        return pb.ListPlayersResponse(players=[player_to_pb(p) for p in self._store.players()])

    @_rpc
    def SampleOpponent(self, request: pb.SampleOpponentRequest) -> pb.SampleOpponentResponse:
        [match] = self._training_matches(request.player, request.opponent_lineage, 1)
        return pb.SampleOpponentResponse(match=match)

    @_rpc
    def SampleOpponents(self, request: pb.SampleOpponentsRequest) -> pb.SampleOpponentsResponse:
        if not 1 <= request.count <= MAX_BATCH:
            raise _invalid(f"count must be between 1 and {MAX_BATCH}, got {request.count}")
        matches = self._training_matches(request.player, request.opponent_lineage, request.count)
        return pb.SampleOpponentsResponse(matches=matches)

    def _training_matches(self, player: str, opponent_lineage: str, count: int) -> list[pb.Match]:
        """`count` training matches for `player`, the request checked once."""
        learner = self._player(player, "player")
        if learner.kind != PlayerKind.LEARNER:
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"player {learner.id!r} is a {learner.kind}; only LEARNER players get "
                "training opponents",
            )
        if opponent_lineage:
            other = self._player(opponent_lineage, "opponent_lineage")
            if other.kind != PlayerKind.LEARNER:
                raise _invalid(f"opponent_lineage {other.id!r} is a {other.kind}, not a LEARNER")
        try:
            opponents = self._matchmaker.training_opponents(
                learner, self._store.players(), count, opponent_lineage, self._payoff.win_rate
            )
        except NoOpponent as exc:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        with self._samples_lock:
            self._opponent_samples.update((learner.id, o) for o in opponents)
        return [
            pb.Match(
                match_id=uuid.uuid4().hex,
                player_a=learner.id,
                player_b=opponent,
                kind=pb.MATCH_KIND_TRAINING,
            )
            for opponent in opponents
        ]

    @_rpc
    def SnapshotDue(self, request: pb.SnapshotDueRequest) -> pb.SnapshotDueResponse:
        if request.versions_since < 0 or request.every_versions < 1:
            raise _invalid(
                "versions_since must be >= 0 and every_versions >= 1, got "
                f"{request.versions_since} and {request.every_versions}"
            )
        learner = self._player(request.lineage, "lineage")
        if learner.kind != PlayerKind.LEARNER:
            raise _invalid(f"{learner.id!r} is a {learner.kind}, not a LEARNER")
        due, reason = self._matchmaker.snapshot_due(
            learner,
            self._store.players(),
            request.versions_since,
            request.every_versions,
            self._payoff.win_rate,
        )
        reset = due and self._matchmaker.reset_after_snapshot(learner)
        return pb.SnapshotDueResponse(due=due, reset=reset, reason=reason)

    def opponent_samples(self) -> dict[tuple[str, str], int]:
        """A copy of the (learner, opponent) -> training opponents sampled so far."""
        with self._samples_lock:
            return dict(self._opponent_samples)

    @_rpc
    def SampleEvalMatch(self, request: pb.SampleEvalMatchRequest) -> pb.SampleEvalMatchResponse:
        try:
            with self._rated_lock:
                counts = dict(self._rated_games)
            lineages = (request.lineage_a, request.lineage_b)
            for field, name in zip(("lineage_a", "lineage_b"), lineages, strict=True):
                if name and self._player(name, field).kind != PlayerKind.LEARNER:
                    raise _invalid(f"{field} {name!r} is not a LEARNER lineage")
            a, b = self._matchmaker.eval_pair(self._store.players(), counts, lineages)
        except NoEvalPair as exc:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        match = pb.Match(match_id=uuid.uuid4().hex, player_a=a, player_b=b, kind=pb.MATCH_KIND_EVAL)
        return pb.SampleEvalMatchResponse(match=match)

    @_rpc
    def ReportResult(self, request: pb.ReportResultRequest) -> pb.ReportResultResponse:
        return self._record([self._validate_result(request)])[0]

    @_rpc
    def ReportResults(self, request: pb.ReportResultsRequest) -> pb.ReportResultsResponse:
        if not 1 <= len(request.results) <= MAX_BATCH:
            raise _invalid(f"send between 1 and {MAX_BATCH} results, got {len(request.results)}")
        results = []
        for i, item in enumerate(request.results):
            try:
                results.append(self._validate_result(item))
            except Rejected as exc:  # nothing recorded yet: the batch is refused whole
                raise Rejected(exc.code, f"results[{i}]: {exc.message}") from exc
        return pb.ReportResultsResponse(results=self._record(results))

    def _record(self, results: list[ResultRecord]) -> list[pb.ReportResultResponse]:
        """Stores validated results once each (idempotent by match id), in one
        transaction: durable before any reply says so."""
        return [
            self._apply(result, applied, stored)
            for result, (applied, stored) in zip(
                results, self._store.add_results(results), strict=True
            )
        ]

    def _apply(
        self, result: ResultRecord, applied: bool, stored: ResultRecord
    ) -> pb.ReportResultResponse:
        """The in-memory side of a stored result: counts, payoff, quality; the reply."""
        if applied:
            self._count_if_rated(result)
            self._payoff.add(result.player_a, result.player_b, result.outcome)
            self._update_quality(result)
            return pb.ReportResultResponse(applied=True, duplicate=False, message="applied")
        message = f"match {result.match_id} was already recorded; nothing changed"
        if not stored.same_report(result):
            # Same id, different content: a client bug (reused ids) worth surfacing.
            message += " (the stored report differs from this one)"
            log.warning("conflicting duplicate report for match %s", result.match_id)
        return pb.ReportResultResponse(applied=False, duplicate=True, message=message)

    def _update_quality(self, result: ResultRecord) -> None:
        """Sampling "five": a learner's training win lowers the beaten player's quality."""
        if self._quality is None or result.outcome != Outcome.A_WIN:
            return
        learner = self._store.get_player(result.player_a)
        opponent = self._store.get_player(result.player_b)
        if learner is None or opponent is None or learner.frozen or not opponent.frozen:
            return
        pool = self._matchmaker.main_pool(learner, self._store.players())
        self._quality.learner_won(opponent.id, [p.id for p in pool])

    def _count_if_rated(self, result: ResultRecord) -> None:
        players = [self._store.get_player(p) for p in (result.player_a, result.player_b)]
        if all(p is not None and p.kind in FROZEN_KINDS for p in players):
            with self._rated_lock:
                self._rated_games[result.player_a] += 1
                self._rated_games[result.player_b] += 1

    def _validate_result(self, request: pb.ReportResultRequest) -> ResultRecord:
        problem = match_id_problem(request.match_id)
        if problem:
            raise _invalid(problem)
        outcome = OUTCOME_FROM_PB.get(request.outcome)
        if outcome is None:
            raise _invalid("outcome must be OUTCOME_A_WIN, OUTCOME_B_WIN or OUTCOME_DRAW")
        kind = MATCH_KIND_FROM_PB.get(request.kind)
        if kind is None:
            raise _invalid("kind must be MATCH_KIND_TRAINING or MATCH_KIND_EVAL")
        if request.a_version < 0:
            raise _invalid(f"a_version must be >= 0, got {request.a_version}")
        if request.steps < 0:
            raise _invalid(f"steps must be >= 0, got {request.steps}")
        a = self._player(request.player_a, "player_a")
        b = self._player(request.player_b, "player_b")
        return ResultRecord(
            request.match_id, a.id, b.id, outcome, request.a_version, kind, request.steps
        )

    @_rpc
    def GetRatings(self, request: pb.GetRatingsRequest) -> pb.GetRatingsResponse:
        try:
            rows = standings(self._store, self._settings.anchor)
        except ValueError as exc:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        skills = self._openskill()
        ratings = [
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
        return pb.GetRatingsResponse(ratings=ratings, anchor=self._settings.anchor)

    def _openskill(self) -> dict[str, SkillRating]:
        with self._skills_lock:
            # Results first, then players: every player of a fetched result is listed.
            new = self._store.results(start=self._skills_seen)
            frozen = {p.id for p in self._store.players() if p.frozen}
            self._skills.extend(new, frozen)
            self._skills_seen += len(new)
            return self._skills.ratings()

    def _filter(self, players: list[str]) -> list[str]:
        try:
            check_filter(self._store.players(), players)
        except UnknownPlayer as exc:
            raise Rejected(grpc.StatusCode.NOT_FOUND, str(exc)) from exc
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
        return players

    @_rpc
    def GetPayoff(self, request: pb.GetPayoffRequest) -> pb.GetPayoffResponse:
        wanted = self._filter(list(request.players))
        report = build_payoff(
            self._store.players(), self._payoff.pairs(), self._payoff.decay, wanted
        )
        entries = [pb.PayoffEntry(**asdict(e)) for e in report.entries]
        return pb.GetPayoffResponse(players=report.players, entries=entries, decay=report.decay)

    @_rpc
    def GetRatingHistory(self, request: pb.GetRatingHistoryRequest) -> pb.GetRatingHistoryResponse:
        try:
            check_points(request.points)
        except ValueError as exc:
            raise _invalid(str(exc)) from exc
        wanted = self._filter(list(request.players))
        # Results before players: every player a fetched result names is then listed.
        results = self._store.results()
        players = self._store.players()
        anchor = self._settings.anchor
        if not any(p.id == anchor for p in players):
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"rating anchor {anchor!r} is not a registered player",
            )
        report = build_history(players, results, anchor, request.points, wanted)
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
                    kind=_KIND_NAME_TO_PB.get(r.kind, pb.PLAYER_KIND_UNSPECIFIED),
                )
                for r in point.ratings
            ]
            points.append(pb.RatingHistoryPoint(time=stamp, results=point.results, ratings=ratings))
        return pb.GetRatingHistoryResponse(points=points, anchor=anchor)


def _skill_fields(skill: SkillRating | None) -> dict[str, float]:
    """PlayerRating's openskill fields (all 0 when not rated)."""
    if skill is None:
        return {}
    return {
        "openskill_mu": skill.mu,
        "openskill_sigma": skill.sigma,
        "openskill_ordinal": skill.ordinal,
    }
