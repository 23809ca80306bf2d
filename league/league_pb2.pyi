import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlayerRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAYER_ROLE_UNSPECIFIED: _ClassVar[PlayerRole]
    PLAYER_ROLE_MAIN: _ClassVar[PlayerRole]
    PLAYER_ROLE_MAIN_EXPLOITER: _ClassVar[PlayerRole]
    PLAYER_ROLE_LEAGUE_EXPLOITER: _ClassVar[PlayerRole]

class PlayerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAYER_KIND_UNSPECIFIED: _ClassVar[PlayerKind]
    PLAYER_KIND_LEARNER: _ClassVar[PlayerKind]
    PLAYER_KIND_SNAPSHOT: _ClassVar[PlayerKind]
    PLAYER_KIND_BUILTIN: _ClassVar[PlayerKind]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_A_WIN: _ClassVar[Outcome]
    OUTCOME_B_WIN: _ClassVar[Outcome]
    OUTCOME_DRAW: _ClassVar[Outcome]

class MatchKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_KIND_UNSPECIFIED: _ClassVar[MatchKind]
    MATCH_KIND_TRAINING: _ClassVar[MatchKind]
    MATCH_KIND_EVAL: _ClassVar[MatchKind]
PLAYER_ROLE_UNSPECIFIED: PlayerRole
PLAYER_ROLE_MAIN: PlayerRole
PLAYER_ROLE_MAIN_EXPLOITER: PlayerRole
PLAYER_ROLE_LEAGUE_EXPLOITER: PlayerRole
PLAYER_KIND_UNSPECIFIED: PlayerKind
PLAYER_KIND_LEARNER: PlayerKind
PLAYER_KIND_SNAPSHOT: PlayerKind
PLAYER_KIND_BUILTIN: PlayerKind
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_A_WIN: Outcome
OUTCOME_B_WIN: Outcome
OUTCOME_DRAW: Outcome
MATCH_KIND_UNSPECIFIED: MatchKind
MATCH_KIND_TRAINING: MatchKind
MATCH_KIND_EVAL: MatchKind

class Player(_message.Message):
    __slots__ = ("id", "kind", "lineage", "version", "created_at", "role")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: PlayerKind
    lineage: str
    version: int
    created_at: _timestamp_pb2.Timestamp
    role: PlayerRole
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[PlayerKind, str]] = ..., lineage: _Optional[str] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., role: _Optional[_Union[PlayerRole, str]] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("match_id", "player_a", "player_b", "kind")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_A_FIELD_NUMBER: _ClassVar[int]
    PLAYER_B_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    player_a: str
    player_b: str
    kind: MatchKind
    def __init__(self, match_id: _Optional[str] = ..., player_a: _Optional[str] = ..., player_b: _Optional[str] = ..., kind: _Optional[_Union[MatchKind, str]] = ...) -> None: ...

class PlayerRating(_message.Message):
    __slots__ = ("player_id", "elo", "ci_low", "ci_high", "games", "wins", "draws", "losses", "rated", "kind", "openskill_mu", "openskill_sigma", "openskill_ordinal")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    ELO_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    GAMES_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    DRAWS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    RATED_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPENSKILL_MU_FIELD_NUMBER: _ClassVar[int]
    OPENSKILL_SIGMA_FIELD_NUMBER: _ClassVar[int]
    OPENSKILL_ORDINAL_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    wins: int
    draws: int
    losses: int
    rated: bool
    kind: PlayerKind
    openskill_mu: float
    openskill_sigma: float
    openskill_ordinal: float
    def __init__(self, player_id: _Optional[str] = ..., elo: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., games: _Optional[int] = ..., wins: _Optional[int] = ..., draws: _Optional[int] = ..., losses: _Optional[int] = ..., rated: _Optional[bool] = ..., kind: _Optional[_Union[PlayerKind, str]] = ..., openskill_mu: _Optional[float] = ..., openskill_sigma: _Optional[float] = ..., openskill_ordinal: _Optional[float] = ...) -> None: ...

class RegisterPlayerRequest(_message.Message):
    __slots__ = ("name", "kind", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: PlayerKind
    role: PlayerRole
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[PlayerKind, str]] = ..., role: _Optional[_Union[PlayerRole, str]] = ...) -> None: ...

class RegisterPlayerResponse(_message.Message):
    __slots__ = ("player", "created")
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    player: Player
    created: bool
    def __init__(self, player: _Optional[_Union[Player, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class RegisterSnapshotRequest(_message.Message):
    __slots__ = ("lineage", "version")
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    lineage: str
    version: int
    def __init__(self, lineage: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RegisterSnapshotResponse(_message.Message):
    __slots__ = ("player", "created")
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    player: Player
    created: bool
    def __init__(self, player: _Optional[_Union[Player, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListPlayersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPlayersResponse(_message.Message):
    __slots__ = ("players",)
    PLAYERS_FIELD_NUMBER: _ClassVar[int]
    players: _containers.RepeatedCompositeFieldContainer[Player]
    def __init__(self, players: _Optional[_Iterable[_Union[Player, _Mapping]]] = ...) -> None: ...

class SampleOpponentRequest(_message.Message):
    __slots__ = ("player", "opponent_lineage")
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    OPPONENT_LINEAGE_FIELD_NUMBER: _ClassVar[int]
    player: str
    opponent_lineage: str
    def __init__(self, player: _Optional[str] = ..., opponent_lineage: _Optional[str] = ...) -> None: ...

class SampleOpponentResponse(_message.Message):
    __slots__ = ("match",)
    MATCH_FIELD_NUMBER: _ClassVar[int]
    match: Match
    def __init__(self, match: _Optional[_Union[Match, _Mapping]] = ...) -> None: ...

class SampleOpponentsRequest(_message.Message):
    __slots__ = ("player", "opponent_lineage", "count")
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    OPPONENT_LINEAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    player: str
    opponent_lineage: str
    count: int
    def __init__(self, player: _Optional[str] = ..., opponent_lineage: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class SampleOpponentsResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[Match]
    def __init__(self, matches: _Optional[_Iterable[_Union[Match, _Mapping]]] = ...) -> None: ...

class SampleEvalMatchRequest(_message.Message):
    __slots__ = ("lineage_a", "lineage_b")
    LINEAGE_A_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_B_FIELD_NUMBER: _ClassVar[int]
    lineage_a: str
    lineage_b: str
    def __init__(self, lineage_a: _Optional[str] = ..., lineage_b: _Optional[str] = ...) -> None: ...

class SampleEvalMatchResponse(_message.Message):
    __slots__ = ("match",)
    MATCH_FIELD_NUMBER: _ClassVar[int]
    match: Match
    def __init__(self, match: _Optional[_Union[Match, _Mapping]] = ...) -> None: ...

class ReportResultRequest(_message.Message):
    __slots__ = ("match_id", "player_a", "player_b", "outcome", "a_version", "kind", "steps")
    MATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_A_FIELD_NUMBER: _ClassVar[int]
    PLAYER_B_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    A_VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    match_id: str
    player_a: str
    player_b: str
    outcome: Outcome
    a_version: int
    kind: MatchKind
    steps: int
    def __init__(self, match_id: _Optional[str] = ..., player_a: _Optional[str] = ..., player_b: _Optional[str] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., a_version: _Optional[int] = ..., kind: _Optional[_Union[MatchKind, str]] = ..., steps: _Optional[int] = ...) -> None: ...

class ReportResultResponse(_message.Message):
    __slots__ = ("applied", "duplicate", "message")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    duplicate: bool
    message: str
    def __init__(self, applied: _Optional[bool] = ..., duplicate: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class ReportResultsRequest(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReportResultRequest]
    def __init__(self, results: _Optional[_Iterable[_Union[ReportResultRequest, _Mapping]]] = ...) -> None: ...

class ReportResultsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReportResultResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[ReportResultResponse, _Mapping]]] = ...) -> None: ...

class GetRatingsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRatingsResponse(_message.Message):
    __slots__ = ("ratings", "anchor")
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    ratings: _containers.RepeatedCompositeFieldContainer[PlayerRating]
    anchor: str
    def __init__(self, ratings: _Optional[_Iterable[_Union[PlayerRating, _Mapping]]] = ..., anchor: _Optional[str] = ...) -> None: ...

class GetPayoffRequest(_message.Message):
    __slots__ = ("players",)
    PLAYERS_FIELD_NUMBER: _ClassVar[int]
    players: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, players: _Optional[_Iterable[str]] = ...) -> None: ...

class PayoffEntry(_message.Message):
    __slots__ = ("player", "opponent", "wins", "draws", "losses", "decayed_score", "decayed_games", "win_rate")
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    OPPONENT_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    DRAWS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    DECAYED_SCORE_FIELD_NUMBER: _ClassVar[int]
    DECAYED_GAMES_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    player: str
    opponent: str
    wins: int
    draws: int
    losses: int
    decayed_score: float
    decayed_games: float
    win_rate: float
    def __init__(self, player: _Optional[str] = ..., opponent: _Optional[str] = ..., wins: _Optional[int] = ..., draws: _Optional[int] = ..., losses: _Optional[int] = ..., decayed_score: _Optional[float] = ..., decayed_games: _Optional[float] = ..., win_rate: _Optional[float] = ...) -> None: ...

class GetPayoffResponse(_message.Message):
    __slots__ = ("players", "entries", "decay")
    PLAYERS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DECAY_FIELD_NUMBER: _ClassVar[int]
    players: _containers.RepeatedScalarFieldContainer[str]
    entries: _containers.RepeatedCompositeFieldContainer[PayoffEntry]
    decay: float
    def __init__(self, players: _Optional[_Iterable[str]] = ..., entries: _Optional[_Iterable[_Union[PayoffEntry, _Mapping]]] = ..., decay: _Optional[float] = ...) -> None: ...

class GetRatingHistoryRequest(_message.Message):
    __slots__ = ("points", "players")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    PLAYERS_FIELD_NUMBER: _ClassVar[int]
    points: int
    players: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, points: _Optional[int] = ..., players: _Optional[_Iterable[str]] = ...) -> None: ...

class HistoryRating(_message.Message):
    __slots__ = ("player_id", "elo", "ci_low", "ci_high", "games", "kind")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    ELO_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    GAMES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    elo: float
    ci_low: float
    ci_high: float
    games: int
    kind: PlayerKind
    def __init__(self, player_id: _Optional[str] = ..., elo: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., games: _Optional[int] = ..., kind: _Optional[_Union[PlayerKind, str]] = ...) -> None: ...

class RatingHistoryPoint(_message.Message):
    __slots__ = ("time", "results", "ratings")
    TIME_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    RATINGS_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    results: int
    ratings: _containers.RepeatedCompositeFieldContainer[HistoryRating]
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., results: _Optional[int] = ..., ratings: _Optional[_Iterable[_Union[HistoryRating, _Mapping]]] = ...) -> None: ...

class GetRatingHistoryResponse(_message.Message):
    __slots__ = ("points", "anchor")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[RatingHistoryPoint]
    anchor: str
    def __init__(self, points: _Optional[_Iterable[_Union[RatingHistoryPoint, _Mapping]]] = ..., anchor: _Optional[str] = ...) -> None: ...

class SnapshotDueRequest(_message.Message):
    __slots__ = ("lineage", "versions_since", "every_versions")
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_SINCE_FIELD_NUMBER: _ClassVar[int]
    EVERY_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    lineage: str
    versions_since: int
    every_versions: int
    def __init__(self, lineage: _Optional[str] = ..., versions_since: _Optional[int] = ..., every_versions: _Optional[int] = ...) -> None: ...

class SnapshotDueResponse(_message.Message):
    __slots__ = ("due", "reset", "reason")
    DUE_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    due: bool
    reset: bool
    reason: str
    def __init__(self, due: _Optional[bool] = ..., reset: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class EvaluationEpisode(_message.Message):
    __slots__ = ("episode_id", "player", "version", "steps_trained", "success")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STEPS_TRAINED_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    player: str
    version: int
    steps_trained: int
    success: bool
    def __init__(self, episode_id: _Optional[str] = ..., player: _Optional[str] = ..., version: _Optional[int] = ..., steps_trained: _Optional[int] = ..., success: _Optional[bool] = ...) -> None: ...

class ReportEvaluationsRequest(_message.Message):
    __slots__ = ("episodes",)
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    episodes: _containers.RepeatedCompositeFieldContainer[EvaluationEpisode]
    def __init__(self, episodes: _Optional[_Iterable[_Union[EvaluationEpisode, _Mapping]]] = ...) -> None: ...

class ReportEvaluationsResponse(_message.Message):
    __slots__ = ("applied", "duplicates")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    applied: int
    duplicates: int
    def __init__(self, applied: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...
