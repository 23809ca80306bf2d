import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("id", "kind", "lineage", "version", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: PlayerKind
    lineage: str
    version: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[PlayerKind, str]] = ..., lineage: _Optional[str] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

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
    __slots__ = ("player_id", "elo", "ci_low", "ci_high", "games", "wins", "draws", "losses", "rated", "kind")
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
    def __init__(self, player_id: _Optional[str] = ..., elo: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., games: _Optional[int] = ..., wins: _Optional[int] = ..., draws: _Optional[int] = ..., losses: _Optional[int] = ..., rated: _Optional[bool] = ..., kind: _Optional[_Union[PlayerKind, str]] = ...) -> None: ...

class RegisterPlayerRequest(_message.Message):
    __slots__ = ("name", "kind")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: PlayerKind
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[PlayerKind, str]] = ...) -> None: ...

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
