"""The League gRPC servicer: validates requests, maps proto <-> records, and
delegates to the store, the matchmaker and the ratings. The enum tables, message
builders and error handling it shares with the wire are in rpc.py, its settings in
settings.py; server lifecycle, auth and health live in server.py.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from dataclasses import asdict

import grpc

from core.config import LeagueSettings
from core.players import RANDOM, Role, name_problem, snapshot_id
from league import league_pb2 as pb
from league import league_pb2_grpc
from league.matchmaking import Matchmaker, NoEvalPair, NoOpponent
from league.openskill_ratings import OpenSkillLedger, SkillRating
from league.payoff import Payoff
from league.quality import QualityScores, replay
from league.records import (
    FROZEN_KINDS,
    EvaluationRecord,
    Outcome,
    PlayerKind,
    PlayerRecord,
    ResultRecord,
    match_id_problem,
)
from league.rpc import (
    KIND_FROM_PB,
    MATCH_KIND_FROM_PB,
    MAX_BATCH,
    OUTCOME_FROM_PB,
    ROLE_FROM_PB,
    Rejected,
    history_to_pb,
    invalid,
    player_to_pb,
    ratings_to_pb,
    rpc,
    validated_batch,
)
from league.standings import rated_games, standings
from league.store import LeagueStore
from league.views import UnknownPlayer, build_history, build_payoff, check_filter, check_points

log = logging.getLogger(__name__)


class LeagueServicer(league_pb2_grpc.LeagueServicer):
    def __init__(self, store: LeagueStore, settings: LeagueSettings) -> None:
        self._store = store
        self._settings = settings
        # OpenAI Five's quality scores, kept while a sampling rule in use weighs by them.
        self._quality = QualityScores() if Matchmaker.needs_quality(settings) else None
        self._matchmaker = Matchmaker(settings, self._quality)
        self._payoff = Payoff(settings.payoff_decay, store.results(), settings.draw_score)
        if self._quality is not None:
            replay(
                self._quality,
                store.players(),
                store.results(),
                lambda learner, players: self._matchmaker.main_pool(learner, players),
            )
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
            raise invalid(f"{field} is empty")
        player = self._store.get_player(player_id)
        if player is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"unknown player {player_id!r} ({field})")
        return player

    @rpc
    def RegisterPlayer(self, request: pb.RegisterPlayerRequest) -> pb.RegisterPlayerResponse:
        problem = name_problem(request.name)
        if problem:
            raise invalid(problem)
        kind = KIND_FROM_PB.get(request.kind)
        if kind is None:
            raise invalid("kind must be PLAYER_KIND_LEARNER or PLAYER_KIND_BUILTIN")
        if kind == PlayerKind.SNAPSHOT:
            raise invalid("snapshots are registered with RegisterSnapshot(lineage, version)")
        role = ROLE_FROM_PB.get(request.role)
        if role is None:
            raise invalid(f"unknown role {request.role}")
        if kind == PlayerKind.LEARNER:
            role = role or Role.MAIN
        elif role:
            raise invalid("only LEARNER players have a role")
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

    @rpc
    def RegisterSnapshot(self, request: pb.RegisterSnapshotRequest) -> pb.RegisterSnapshotResponse:
        if request.version < 0:
            raise invalid(f"version must be >= 0, got {request.version}")
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

    @rpc
    def ListPlayers(self, request: pb.ListPlayersRequest) -> pb.ListPlayersResponse:
        return pb.ListPlayersResponse(players=[player_to_pb(p) for p in self._store.players()])

    @rpc
    def SampleOpponent(self, request: pb.SampleOpponentRequest) -> pb.SampleOpponentResponse:
        [match] = self._training_matches(request.player, request.opponent_lineage, 1)
        return pb.SampleOpponentResponse(match=match)

    @rpc
    def SampleOpponents(self, request: pb.SampleOpponentsRequest) -> pb.SampleOpponentsResponse:
        if not 1 <= request.count <= MAX_BATCH:
            raise invalid(f"count must be between 1 and {MAX_BATCH}, got {request.count}")
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
                raise invalid(f"opponent_lineage {other.id!r} is a {other.kind}, not a LEARNER")
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

    @rpc
    def SnapshotDue(self, request: pb.SnapshotDueRequest) -> pb.SnapshotDueResponse:
        if request.versions_since < 0 or request.every_versions < 1:
            raise invalid(
                "versions_since must be >= 0 and every_versions >= 1, got "
                f"{request.versions_since} and {request.every_versions}"
            )
        learner = self._player(request.lineage, "lineage")
        if learner.kind != PlayerKind.LEARNER:
            raise invalid(f"{learner.id!r} is a {learner.kind}, not a LEARNER")
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

    @rpc
    def SampleEvalMatch(self, request: pb.SampleEvalMatchRequest) -> pb.SampleEvalMatchResponse:
        try:
            with self._rated_lock:
                counts = dict(self._rated_games)
            lineages = (request.lineage_a, request.lineage_b)
            for field, name in zip(("lineage_a", "lineage_b"), lineages, strict=True):
                if name and self._player(name, field).kind != PlayerKind.LEARNER:
                    raise invalid(f"{field} {name!r} is not a LEARNER lineage")
            a, b = self._matchmaker.eval_pair(self._store.players(), counts, lineages)
        except NoEvalPair as exc:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        match = pb.Match(match_id=uuid.uuid4().hex, player_a=a, player_b=b, kind=pb.MATCH_KIND_EVAL)
        return pb.SampleEvalMatchResponse(match=match)

    @rpc
    def ReportResult(self, request: pb.ReportResultRequest) -> pb.ReportResultResponse:
        return self._record([self._validate_result(request)])[0]

    @rpc
    def ReportResults(self, request: pb.ReportResultsRequest) -> pb.ReportResultsResponse:
        results = validated_batch(request.results, self._validate_result, "results")
        return pb.ReportResultsResponse(results=self._record(results))

    @rpc
    def ReportEvaluations(
        self, request: pb.ReportEvaluationsRequest
    ) -> pb.ReportEvaluationsResponse:
        episodes = validated_batch(request.episodes, self._validate_evaluation, "episodes")
        applied = self._store.add_evaluations(episodes)
        return pb.ReportEvaluationsResponse(applied=applied, duplicates=len(episodes) - applied)

    def _validate_evaluation(self, request: pb.EvaluationEpisode) -> EvaluationRecord:
        problem = match_id_problem(request.episode_id)
        if problem:
            raise invalid(problem.replace("match_id", "episode_id"))
        if request.version < 0 or request.steps_trained < 0:
            raise invalid("version and steps_trained must be >= 0")
        if self._player(request.player, "player").kind != PlayerKind.LEARNER:
            raise invalid(f"player {request.player!r} is not a LEARNER lineage")
        return EvaluationRecord(
            request.episode_id,
            request.player,
            request.version,
            request.steps_trained,
            request.success,
        )

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
            raise invalid(problem)
        outcome = OUTCOME_FROM_PB.get(request.outcome)
        if outcome is None:
            raise invalid("outcome must be OUTCOME_A_WIN, OUTCOME_B_WIN or OUTCOME_DRAW")
        kind = MATCH_KIND_FROM_PB.get(request.kind)
        if kind is None:
            raise invalid("kind must be MATCH_KIND_TRAINING or MATCH_KIND_EVAL")
        if request.a_version < 0:
            raise invalid(f"a_version must be >= 0, got {request.a_version}")
        if request.steps < 0:
            raise invalid(f"steps must be >= 0, got {request.steps}")
        a = self._player(request.player_a, "player_a")
        b = self._player(request.player_b, "player_b")
        return ResultRecord(
            request.match_id, a.id, b.id, outcome, request.a_version, kind, request.steps
        )

    @rpc
    def GetRatings(self, request: pb.GetRatingsRequest) -> pb.GetRatingsResponse:
        try:
            rows = standings(self._store, RANDOM)
        except ValueError as exc:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from exc
        skills = self._openskill()
        return pb.GetRatingsResponse(ratings=ratings_to_pb(rows, skills), anchor=RANDOM)

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
            raise invalid(str(exc)) from exc
        return players

    @rpc
    def GetPayoff(self, request: pb.GetPayoffRequest) -> pb.GetPayoffResponse:
        wanted = self._filter(list(request.players))
        report = build_payoff(
            self._store.players(), self._payoff.pairs(), self._payoff.decay, wanted
        )
        entries = [pb.PayoffEntry(**asdict(e)) for e in report.entries]
        return pb.GetPayoffResponse(players=report.players, entries=entries, decay=report.decay)

    @rpc
    def GetRatingHistory(self, request: pb.GetRatingHistoryRequest) -> pb.GetRatingHistoryResponse:
        try:
            check_points(request.points)
        except ValueError as exc:
            raise invalid(str(exc)) from exc
        wanted = self._filter(list(request.players))
        # Results before players: every player a fetched result names is then listed.
        results = self._store.results()
        players = self._store.players()
        anchor = RANDOM
        if not any(p.id == anchor for p in players):
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"rating anchor {anchor!r} is not a registered player",
            )
        report = build_history(players, results, anchor, request.points, wanted)
        return pb.GetRatingHistoryResponse(points=history_to_pb(report), anchor=anchor)
