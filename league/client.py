"""Client for the league service, as used by actors, learners and the CLI.

Calls retry UNAVAILABLE with a short exponential backoff for up to `retry_s`
seconds, so an actor rides through a league restart. Every other failure raises
LeagueError carrying the server's one-line message. Retrying is safe for every
RPC: registrations and reports are idempotent, samples have no side effects.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from core.league_protocol import (
    EvaluationReport,
    LeagueError,
    Match,
    ResultReport,
    SnapshotAdvice,
)
from core.players import Role
from league import league_pb2 as pb
from league import league_pb2_grpc
from league.records import MatchKind, Outcome, PlayerKind
from league.reports import HistoryPointView, HistoryReport, HistoryRow, PayoffEntry, PayoffReport

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["League"].full_name

_KIND_TO_PB = {
    PlayerKind.LEARNER: pb.PLAYER_KIND_LEARNER,
    PlayerKind.SNAPSHOT: pb.PLAYER_KIND_SNAPSHOT,
    PlayerKind.BUILTIN: pb.PLAYER_KIND_BUILTIN,
}
_KIND_FROM_PB = {v: k.value for k, v in _KIND_TO_PB.items()}
_ROLE_TO_PB = {
    Role.NONE: pb.PLAYER_ROLE_UNSPECIFIED,
    Role.MAIN: pb.PLAYER_ROLE_MAIN,
    Role.MAIN_EXPLOITER: pb.PLAYER_ROLE_MAIN_EXPLOITER,
    Role.LEAGUE_EXPLOITER: pb.PLAYER_ROLE_LEAGUE_EXPLOITER,
}
_ROLE_FROM_PB = {v: k.value for k, v in _ROLE_TO_PB.items()}
_OUTCOME_TO_PB = {
    Outcome.A_WIN: pb.OUTCOME_A_WIN,
    Outcome.B_WIN: pb.OUTCOME_B_WIN,
    Outcome.DRAW: pb.OUTCOME_DRAW,
}
_MATCH_KIND_TO_PB = {MatchKind.TRAINING: pb.MATCH_KIND_TRAINING, MatchKind.EVAL: pb.MATCH_KIND_EVAL}
_MATCH_KIND_FROM_PB = {v: k.value for k, v in _MATCH_KIND_TO_PB.items()}

# Reconnect quickly after a restart; gRPC's default backoff can grow to minutes.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class PlayerInfo:
    id: str
    kind: str  # "learner" | "snapshot" | "builtin"
    lineage: str
    version: int
    created_at: float  # unix seconds
    role: str = ""  # learner/snapshot: "main" | "main_exploiter" | "league_exploiter"


@dataclass(frozen=True)
class RatingRow:
    player_id: str
    kind: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    wins: int
    draws: int
    losses: int
    rated: bool
    # OpenSkill over the same rated games in arrival order (0 when not rated).
    openskill_mu: float = 0.0
    openskill_sigma: float = 0.0
    openskill_ordinal: float = 0.0


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())[:500] or "(no details)"


class LeagueClient:
    def __init__(
        self,
        address: str,
        token: str | None = None,
        timeout_s: float = 5.0,
        retry_s: float = 30.0,
        tls_ca: str | Path | None = None,
    ) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.retries = 0  # UNAVAILABLE answers retried so far (a health signal)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if tls_ca is not None:
            creds = grpc.ssl_channel_credentials(root_certificates=Path(tls_ca).read_bytes())
            self._channel = grpc.secure_channel(address, creds, options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = league_pb2_grpc.LeagueStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    # -- plumbing ------------------------------------------------------------

    def _call(self, method: str, request: Any) -> Any:
        rpc = getattr(self._stub, method)
        give_up = time.monotonic() + self.retry_s
        delay = 0.05
        while True:
            try:
                return rpc(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as exc:
                code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
                details = _one_line(exc.details())  # type: ignore[attr-defined]
                if code == grpc.StatusCode.UNAVAILABLE:
                    if time.monotonic() + delay < give_up:
                        self.retries += 1
                        self._backoff(delay)
                        delay = min(delay * 2.0, 1.0)
                        continue
                    details = f"{self.address} unavailable for {self.retry_s:g}s: {details}"
                raise LeagueError(code.name, f"{method}: {details}") from None

    def _backoff(self, seconds: float) -> None:
        """Waits before a retry (a seam for tests that need to observe retries)."""
        time.sleep(seconds)

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Blocks until the league's health check says SERVING, else LeagueError."""
        give_up = time.monotonic() + timeout_s
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        last = "no answer"
        while True:
            left = give_up - time.monotonic()
            if left <= 0:
                raise LeagueError("DEADLINE_EXCEEDED", f"{self.address} not ready: {last}")
            try:
                reply = self._health.Check(request, timeout=left, wait_for_ready=True)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last = _one_line(exc.details())  # type: ignore[attr-defined]
            self._backoff(min(0.1, max(give_up - time.monotonic(), 0.0)))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LeagueClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- API -----------------------------------------------------------------

    def register_player(self, name: str, kind: str = "learner", role: str = "") -> PlayerInfo:
        """Idempotent by name; kind "learner" or "builtin"; a learner's role "main"
        (default), "main_exploiter" or "league_exploiter"."""
        request = pb.RegisterPlayerRequest(
            name=name, kind=_KIND_TO_PB[PlayerKind(kind)], role=_ROLE_TO_PB[Role(role)]
        )
        return _player(self._call("RegisterPlayer", request).player)

    def snapshot_due(
        self, lineage: str, versions_since: int, every_versions: int
    ) -> SnapshotAdvice:
        """Whether learner `lineage` should freeze a snapshot now, and restart after it."""
        request = pb.SnapshotDueRequest(
            lineage=lineage, versions_since=versions_since, every_versions=every_versions
        )
        answer = self._call("SnapshotDue", request)
        return SnapshotAdvice(answer.due, answer.reset, answer.reason)

    def register_snapshot(self, lineage: str, version: int) -> str:
        """Freezes `lineage` at `version`; returns the snapshot id "{lineage}@v{version}"."""
        request = pb.RegisterSnapshotRequest(lineage=lineage, version=version)
        return str(self._call("RegisterSnapshot", request).player.id)

    def players(self) -> list[PlayerInfo]:
        """All players in registration order."""
        return [_player(p) for p in self._call("ListPlayers", pb.ListPlayersRequest()).players]

    def sample_opponent(self, player: str, opponent_lineage: str = "") -> Match:
        """A training match for learner `player` (player_b == player_a: latest self); in
        team games the opponent comes from `opponent_lineage`."""
        request = pb.SampleOpponentRequest(player=player, opponent_lineage=opponent_lineage)
        return _match(self._call("SampleOpponent", request).match)

    def sample_opponents(self, player: str, count: int, opponent_lineage: str = "") -> list[Match]:
        """`count` training matches for `player` in one call (as `sample_opponent`)."""
        request = pb.SampleOpponentsRequest(
            player=player, opponent_lineage=opponent_lineage, count=count
        )
        return [_match(m) for m in self._call("SampleOpponents", request).matches]

    def sample_eval_match(self, lineage_a: str = "", lineage_b: str = "") -> Match:
        request = pb.SampleEvalMatchRequest(lineage_a=lineage_a, lineage_b=lineage_b)
        return _match(self._call("SampleEvalMatch", request).match)

    def report_result(
        self,
        match_id: str,
        player_a: str,
        player_b: str,
        outcome: str,
        a_version: int = 0,
        kind: str = "training",
        steps: int = 0,
    ) -> bool:
        """Records a finished match; True if applied, False if the id was already recorded.

        False after a retried call can mean this very call's first attempt got
        through before the connection dropped; either way the match counts once.
        """
        report = ResultReport(match_id, player_a, player_b, outcome, a_version, kind, steps)
        return bool(self._call("ReportResult", _result_request(report)).applied)

    def report_results(self, results: Sequence[ResultReport]) -> list[bool]:
        """Records up to 1024 finished matches in one call, all or none (a malformed one
        rejects the batch); per result True if applied, False if already recorded."""
        request = pb.ReportResultsRequest(results=[_result_request(r) for r in results])
        return [bool(r.applied) for r in self._call("ReportResults", request).results]

    def report_evaluations(self, episodes: Sequence[EvaluationReport]) -> int:
        """Records up to 1024 goal-job evaluation episodes in one call, all or none;
        returns how many were new (the rest were already recorded)."""
        request = pb.ReportEvaluationsRequest(
            episodes=[
                pb.EvaluationEpisode(
                    episode_id=e.episode_id,
                    player=e.player,
                    version=e.version,
                    steps_trained=e.steps_trained,
                    success=e.success,
                )
                for e in episodes
            ]
        )
        return int(self._call("ReportEvaluations", request).applied)

    def ratings(self) -> list[RatingRow]:
        """Rated players by Elo (best first), then unrated ones."""
        reply = self._call("GetRatings", pb.GetRatingsRequest())
        return [
            RatingRow(
                player_id=r.player_id,
                kind=_KIND_FROM_PB.get(r.kind, "unknown"),
                elo=r.elo,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                games=r.games,
                wins=r.wins,
                draws=r.draws,
                losses=r.losses,
                rated=r.rated,
                openskill_mu=r.openskill_mu,
                openskill_sigma=r.openskill_sigma,
                openskill_ordinal=r.openskill_ordinal,
            )
            for r in reply.ratings
        ]

    def payoff(self, players: Sequence[str] = ()) -> PayoffReport:
        """The payoff matrix (raw W/D/L and decayed win rates per ordered pair), over
        `players` only when given (NOT_FOUND for an unknown one)."""
        reply = self._call("GetPayoff", pb.GetPayoffRequest(players=list(players)))
        entries = [
            PayoffEntry(
                e.player,
                e.opponent,
                e.wins,
                e.draws,
                e.losses,
                e.decayed_score,
                e.decayed_games,
                e.win_rate,
            )
            for e in reply.entries
        ]
        return PayoffReport(list(reply.players), entries, reply.decay)

    def rating_history(self, points: int = 20, players: Sequence[str] = ()) -> HistoryReport:
        """Elo with 95% intervals at `points` (1..500) times, oldest first."""
        request = pb.GetRatingHistoryRequest(points=points, players=list(players))
        reply = self._call("GetRatingHistory", request)
        views = [
            HistoryPointView(
                time=p.time.seconds + p.time.nanos / 1e9,
                results=p.results,
                ratings=[
                    HistoryRow(
                        r.player_id,
                        _KIND_FROM_PB.get(r.kind, "unknown"),
                        r.elo,
                        r.ci_low,
                        r.ci_high,
                        r.games,
                    )
                    for r in p.ratings
                ],
            )
            for p in reply.points
        ]
        return HistoryReport(reply.anchor, views)


def _player(p: pb.Player) -> PlayerInfo:
    created = p.created_at.seconds + p.created_at.nanos / 1e9
    return PlayerInfo(
        p.id,
        _KIND_FROM_PB.get(p.kind, "unknown"),
        p.lineage,
        p.version,
        created,
        _ROLE_FROM_PB.get(p.role, "unknown"),
    )


def _result_request(r: ResultReport) -> pb.ReportResultRequest:
    return pb.ReportResultRequest(
        match_id=r.match_id,
        player_a=r.player_a,
        player_b=r.player_b,
        outcome=_OUTCOME_TO_PB[Outcome(r.outcome)],
        a_version=r.a_version,
        kind=_MATCH_KIND_TO_PB[MatchKind(r.kind)],
        steps=r.steps,
    )


def _match(m: pb.Match) -> Match:
    return Match(m.match_id, m.player_a, m.player_b, _MATCH_KIND_FROM_PB.get(m.kind, "unknown"))
