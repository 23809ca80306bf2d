"""The trajectory chunk, defined once: `FIELDS` is the table of everything a chunk can
carry, and the wire spec (`ChunkSpec.tensor_specs`), the encoder and decoder
(core/codec.py) and the actors' chunk builder (actors/chunking.py) all derive from it.

A chunk is T consecutive decisions of one agent track (actors/chunking.py) plus the
observation after the last one. The required fields are what any learner needs; the
optional ones are carried when the job's algorithm asks for them (`AlgorithmConfig.
chunk_fields`): what the behaviour policy stored (log-probabilities, value estimates),
goals and success flags for goal-conditioned jobs, a recurrent policy's state at the
chunk's start. Adding a field is one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from core.config import JobConfig
from core.spaces import PolicyShape

_F32, _I64, _BOOL, _U8 = (np.dtype(t) for t in (np.float32, np.int64, np.bool_, np.uint8))


@dataclass(frozen=True)
class ChunkField:
    """One row of the table. `shape(spec)` is the field's shape in a chunk of that spec;
    `dtype` its wire dtype (None: set by the action kind, see `ChunkSpec.dtype_of`);
    `per_step` fields have one row per step ([T, ...]) and are filled step by step, the
    others once per chunk. Discrete actions come with a mask (`discrete_only`)."""

    name: str
    shape: Callable[[ChunkSpec], tuple[int, ...]]
    dtype: np.dtype | None
    per_step: bool = True
    optional: bool = False
    discrete_only: bool = False
    help: str = ""


FIELDS: tuple[ChunkField, ...] = (
    ChunkField("obs", lambda s: (s.chunk_length, s.obs_dim), _F32, help="observation at each step"),
    ChunkField(
        "actions",
        lambda s: (s.chunk_length,) if s.discrete else (s.chunk_length, s.action_size),
        None,
        help="int64 [T] (discrete) or float32 [T, action_dim]",
    ),
    ChunkField(
        "action_mask",
        lambda s: (s.chunk_length, s.action_size),
        _U8,
        discrete_only=True,
        help="legal actions (0/1; all ones where the env has no mask)",
    ),
    ChunkField("rewards", lambda s: (s.chunk_length,), _F32, help="reward after each step"),
    ChunkField("dones", lambda s: (s.chunk_length,), _BOOL, help="the episode ended there"),
    ChunkField(
        "policy_versions", lambda s: (s.chunk_length,), _I64, help="weights that chose each action"
    ),
    ChunkField(
        "bootstrap_obs",
        lambda s: (s.obs_dim,),
        _F32,
        per_step=False,
        help="observation after the last step",
    ),
    ChunkField(
        "behaviour_logp",
        lambda s: (s.chunk_length,),
        _F32,
        optional=True,
        help="log-probability of each action under the policy that chose it",
    ),
    ChunkField(
        "values", lambda s: (s.chunk_length,), _F32, optional=True, help="its value estimate"
    ),
    ChunkField(
        "desired_goal",
        lambda s: (s.chunk_length, s.goal_dim),
        _F32,
        optional=True,
        help="goal-conditioned jobs: the goal of each step",
    ),
    ChunkField(
        "achieved_goal",
        lambda s: (s.chunk_length, s.goal_dim),
        _F32,
        optional=True,
        help="the goal achieved after each step (hindsight relabelling)",
    ),
    ChunkField(
        "is_success", lambda s: (s.chunk_length,), _BOOL, optional=True, help="info['is_success']"
    ),
    ChunkField(
        "dynamics",
        lambda s: (s.chunk_length, s.dynamics_dim),
        _F32,
        optional=True,
        help="sim2real jobs: the physics parameters of each step's episode (core/dynamics.py)",
    ),
    ChunkField(
        "recurrent_state",
        lambda s: (s.state_dim,),
        _F32,
        per_step=False,
        optional=True,
        help="a recurrent policy's state at the chunk's first step",
    ),
)
FIELDS_BY_NAME: Mapping[str, ChunkField] = {f.name: f for f in FIELDS}
OPTIONAL_FIELDS = frozenset(f.name for f in FIELDS if f.optional)
_HEADER_SLACK = 64 * 1024


@dataclass(frozen=True)
class ChunkSpec:
    """What a job's chunks must look like. Exactly one of num_actions (discrete: int64
    actions [T] plus a uint8 mask [T, num_actions]) and action_dim (continuous: float32
    actions [T, action_dim], no mask) is set. `optional`: the optional fields this job's
    chunks carry (`goal_dim` / `state_dim` size the goal and recurrent-state fields).
    max_bytes defaults to twice the expected payload plus 64 KiB for header and
    metadata."""

    obs_dim: int
    chunk_length: int
    num_actions: int | None = None
    action_dim: int | None = None
    optional: frozenset[str] = frozenset()
    goal_dim: int = 0
    state_dim: int = 0
    dynamics_dim: int = 0
    max_bytes: int | None = None  # always an int after construction

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.chunk_length < 1:
            raise ValueError("ChunkSpec needs obs_dim >= 1 and chunk_length >= 1")
        if (self.num_actions is None) == (self.action_dim is None):
            raise ValueError("ChunkSpec needs exactly one of num_actions and action_dim")
        if self.action_size < 1:
            raise ValueError("ChunkSpec num_actions/action_dim must be >= 1")
        object.__setattr__(self, "optional", frozenset(self.optional))
        unknown = sorted(self.optional - OPTIONAL_FIELDS)
        if unknown:
            raise ValueError(f"ChunkSpec: {unknown} are no optional chunk fields")
        for size_name, size, fields in (
            ("goal_dim", self.goal_dim, {"desired_goal", "achieved_goal"}),
            ("state_dim", self.state_dim, {"recurrent_state"}),
            ("dynamics_dim", self.dynamics_dim, {"dynamics"}),
        ):
            if (size > 0) != bool(self.optional & fields):
                raise ValueError(f"ChunkSpec: {size_name} > 0 exactly when it carries {fields}")
        if self.max_bytes is None:
            object.__setattr__(self, "max_bytes", 2 * self.expected_bytes + _HEADER_SLACK)
        elif self.max_bytes < self.expected_bytes:
            raise ValueError(
                f"ChunkSpec max_bytes={self.max_bytes} is below one chunk "
                f"({self.expected_bytes} bytes)"
            )

    @property
    def discrete(self) -> bool:
        return self.num_actions is not None

    @property
    def action_size(self) -> int:
        """Discrete: the number of actions; continuous: the action's dimensions."""
        return self.num_actions if self.num_actions is not None else self.action_dim or 0

    def fields(self) -> list[ChunkField]:
        """The table's rows that chunks of this spec carry, in table order."""
        return [
            f
            for f in FIELDS
            if (not f.optional or f.name in self.optional)
            and (not f.discrete_only or self.discrete)
        ]

    def dtype_of(self, field: ChunkField) -> np.dtype:
        if field.dtype is not None:
            return field.dtype
        return _I64 if self.discrete else _F32  # the actions

    def tensor_specs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Every tensor a chunk carries on the wire: name -> (shape, dtype)."""
        return {f.name: (f.shape(self), self.dtype_of(f)) for f in self.fields()}

    @property
    def expected_bytes(self) -> int:
        return sum(
            int(np.prod(shape)) * dtype.itemsize for shape, dtype in self.tensor_specs().values()
        )


@dataclass
class TrajectoryChunk:
    """T consecutive steps of one agent track: `arrays` holds the fields of its spec by
    name (a discrete chunk's mask as bool), readable as attributes too (`chunk.obs`; an
    optional field the chunk lacks reads as None). Decoded arrays are views of the parsed
    payload."""

    arrays: dict[str, np.ndarray]
    job: str
    actor_id: str
    # The actor's chunk track that filled it (actors/chunking.py TrackPool). Rows up to
    # a done are one agent's consecutive decisions; a track passes between agents and
    # games only at episode ends and chunk boundaries.
    env_index: int
    sequence: int  # per (actor_id, env_index), increasing

    @classmethod
    def of(
        cls, job: str, actor_id: str, env_index: int, sequence: int, **arrays: np.ndarray | None
    ) -> TrajectoryChunk:
        """A chunk from keyword arrays; None ones (a continuous chunk's mask) are left out."""
        unknown = sorted(set(arrays) - set(FIELDS_BY_NAME))
        if unknown:
            raise ValueError(f"{unknown} are no chunk fields")
        kept = {k: v for k, v in arrays.items() if v is not None}
        return cls(kept, job, actor_id, env_index, sequence)

    def __getattr__(self, name: str) -> np.ndarray | None:
        if name in FIELDS_BY_NAME:
            return self.__dict__["arrays"].get(name)
        raise AttributeError(name)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def names(self) -> Iterable[str]:
        return self.arrays.keys()

    @property
    def policy_version(self) -> int:
        """The oldest weights that acted in this chunk: what policy lag is measured by."""
        return int(self.arrays["policy_versions"].min())

    @property
    def num_steps(self) -> int:
        return int(self.arrays["rewards"].shape[0])


def job_chunk_spec(config: JobConfig, shape: PolicyShape) -> ChunkSpec:
    """The chunks a job's actors write and its learners read, for a lineage whose policy
    has `shape`: the optional fields its algorithm asks for, the episode's physics
    parameters when the job randomises them, and a recurrent policy's state at the start."""
    randomization = config.env.randomization
    dynamics_dim = len(randomization.train.ranges()) if randomization is not None else 0
    state_dim = 2 * config.model.lstm  # a recurrent policy's h and c
    optional = set(config.algorithm.chunk_fields)
    optional |= {"dynamics"} if dynamics_dim else set()
    optional |= {"recurrent_state"} if state_dim else set()
    return ChunkSpec(
        obs_dim=shape.obs_dim,
        chunk_length=config.actors.chunk_length,
        num_actions=None if shape.continuous else shape.num_actions,
        action_dim=shape.num_actions if shape.continuous else None,
        optional=frozenset(optional),
        goal_dim=shape.goal_dim,
        state_dim=state_dim,
        dynamics_dim=dynamics_dim,
    )
