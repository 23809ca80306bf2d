"""Wire codec: trajectory chunks and weights as safetensors bytes (never pickle).

Decoding is the trust boundary between actors and the learner, so it checks the
size before parsing and then every name, dtype, shape and value it hands on.
"""

from __future__ import annotations

import json
from collections.abc import KeysView, Mapping
from dataclasses import dataclass

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch

SCHEMA_VERSION = 1
# Redis refuses bulk strings above 512 MiB (proto-max-bulk-len), so nothing larger
# can be a stored weight blob anyway.
WEIGHTS_MAX_BYTES = 512 * 1024 * 1024
_HEADER_SLACK = 64 * 1024
_WEIGHT_META = ("schema_version", "version")


class CodecError(ValueError):
    """A payload that must not reach the learner or an actor; one line naming the culprit."""


@dataclass(frozen=True)
class ChunkSpec:
    """What a job's chunks must look like. Exactly one of num_actions (discrete:
    int64 actions [T] plus a uint8 mask [T, num_actions]) and action_dim
    (continuous: float32 actions [T, action_dim], no mask) is set. max_bytes
    defaults to twice the expected payload plus 64 KiB for header and metadata."""

    obs_dim: int
    chunk_length: int
    num_actions: int | None = None
    action_dim: int | None = None
    max_bytes: int | None = None  # always an int after construction

    def __post_init__(self) -> None:
        if self.obs_dim < 1 or self.chunk_length < 1:
            raise ValueError("ChunkSpec needs obs_dim >= 1 and chunk_length >= 1")
        if (self.num_actions is None) == (self.action_dim is None):
            raise ValueError("ChunkSpec needs exactly one of num_actions and action_dim")
        if (self.num_actions or self.action_dim or 0) < 1:
            raise ValueError("ChunkSpec num_actions/action_dim must be >= 1")
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

    def tensor_specs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Every tensor a chunk carries on the wire: name -> (shape, dtype)."""
        t, d = self.chunk_length, self.obs_dim
        specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "obs": ((t, d), np.dtype(np.float32)),
            "rewards": ((t,), np.dtype(np.float32)),
            "dones": ((t,), np.dtype(np.bool_)),
            "behaviour_logp": ((t,), np.dtype(np.float32)),
            "values": ((t,), np.dtype(np.float32)),
            "policy_versions": ((t,), np.dtype(np.int64)),
            "bootstrap_obs": ((d,), np.dtype(np.float32)),
        }
        if self.num_actions is not None:
            specs["actions"] = ((t,), np.dtype(np.int64))
            specs["action_mask"] = ((t, self.num_actions), np.dtype(np.uint8))
        else:
            assert self.action_dim is not None
            specs["actions"] = ((t, self.action_dim), np.dtype(np.float32))
        return specs

    @property
    def expected_bytes(self) -> int:
        return sum(
            int(np.prod(shape)) * dtype.itemsize for shape, dtype in self.tensor_specs().values()
        )


@dataclass
class TrajectoryChunk:
    """T consecutive steps of one env. Decoded arrays are views of the parsed payload."""

    obs: np.ndarray  # float32 [T, obs_dim]
    action_mask: np.ndarray | None  # bool [T, num_actions] (discrete) or None
    actions: np.ndarray  # int64 [T] or float32 [T, action_dim]
    rewards: np.ndarray  # float32 [T]
    dones: np.ndarray  # bool [T]: the episode ended after this step
    behaviour_logp: np.ndarray  # float32 [T]
    values: np.ndarray  # float32 [T]
    policy_versions: np.ndarray  # int64 [T]: weights that chose each action
    bootstrap_obs: np.ndarray  # float32 [obs_dim]: observation after the last step
    job: str
    actor_id: str
    # The actor's chunk track that filled it (actors/chunking.py TrackPool). Rows up to
    # a done are one agent's consecutive decisions; a track passes between agents and
    # games only at episode ends and chunk boundaries.
    env_index: int
    sequence: int  # per (actor_id, env_index), increasing

    @property
    def policy_version(self) -> int:
        """The oldest weights that acted in this chunk: what policy lag is measured by."""
        return int(self.policy_versions.min())

    @property
    def num_steps(self) -> int:
        return int(self.rewards.shape[0])


def _read_metadata(data: bytes) -> dict[str, str]:
    # Only called after safetensors has accepted the payload, so the header is sound.
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {}
    return dict(meta)


def _meta_int(meta: Mapping[str, str], key: str, what: str) -> int:
    if key not in meta:
        raise CodecError(f"{what} metadata is missing {key!r}")
    value = meta[key]
    if not value.isdigit() or not value.isascii():
        raise CodecError(f"{what} metadata {key!r} must be a non-negative integer, got {value!r}")
    return int(value)


def _check_schema(meta: Mapping[str, str], what: str) -> None:
    found = _meta_int(meta, "schema_version", what)
    if found != SCHEMA_VERSION:
        raise CodecError(f"{what} has schema version {found}, expected {SCHEMA_VERSION}")


def _check_names(expected: KeysView[str], found: KeysView[str], what: str) -> None:
    missing, extra = sorted(expected - found), sorted(found - expected)
    if missing:
        raise CodecError(f"{what} is missing tensor(s) {', '.join(map(repr, missing))}")
    if extra:
        raise CodecError(f"{what} has unexpected tensor(s) {', '.join(map(repr, extra))}")


def _first_bad(bad: np.ndarray) -> str:
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return str(index[0]) if len(index) == 1 else str(index)


def encode_chunk(chunk: TrajectoryChunk) -> bytes:
    """safetensors bytes; arrays already of the wire dtype and contiguous are not copied."""
    tensors = {
        "obs": np.ascontiguousarray(chunk.obs, dtype=np.float32),
        "actions": np.ascontiguousarray(
            chunk.actions, dtype=np.int64 if chunk.action_mask is not None else np.float32
        ),
        "rewards": np.ascontiguousarray(chunk.rewards, dtype=np.float32),
        "dones": np.ascontiguousarray(chunk.dones, dtype=np.bool_),
        "behaviour_logp": np.ascontiguousarray(chunk.behaviour_logp, dtype=np.float32),
        "values": np.ascontiguousarray(chunk.values, dtype=np.float32),
        "policy_versions": np.ascontiguousarray(chunk.policy_versions, dtype=np.int64),
        "bootstrap_obs": np.ascontiguousarray(chunk.bootstrap_obs, dtype=np.float32),
    }
    if chunk.action_mask is not None:
        mask = np.ascontiguousarray(chunk.action_mask)
        # bool -> uint8 is a free reinterpretation; anything else is normalised to 0/1.
        tensors["action_mask"] = (
            mask.view(np.uint8) if mask.dtype == np.bool_ else (mask != 0).astype(np.uint8)
        )
    metadata = {
        "schema_version": str(SCHEMA_VERSION),
        "job": chunk.job,
        "actor_id": chunk.actor_id,
        "env_index": str(int(chunk.env_index)),
        "sequence": str(int(chunk.sequence)),
    }
    return safetensors.numpy.save(tensors, metadata=metadata)


def decode_chunk(data: bytes, spec: ChunkSpec, job: str | None = None) -> TrajectoryChunk:
    """Validate and decode one chunk; any defect raises CodecError. `job`, if given,
    must match the chunk's job."""
    assert spec.max_bytes is not None
    if len(data) > spec.max_bytes:
        raise CodecError(f"chunk payload is {len(data)} bytes, over the limit of {spec.max_bytes}")
    try:
        arrays = safetensors.numpy.load(data)
        meta = _read_metadata(data)
    except Exception as exc:  # whatever the parser trips on, the payload is bad
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if isinstance(exc, KeyError):  # numpy has no such dtype (e.g. BF16)
            reason = f"unsupported dtype {reason}"
        raise CodecError(f"chunk is not valid safetensors: {reason}") from None

    # Schema first: a chunk from a newer writer fails with the most useful message.
    _check_schema(meta, "chunk")
    specs = spec.tensor_specs()
    _check_names(specs.keys(), arrays.keys(), "chunk")
    for name, (shape, dtype) in specs.items():
        arr = arrays[name]
        if arr.dtype != dtype:
            raise CodecError(f"tensor {name!r} has dtype {arr.dtype}, expected {dtype}")
        if arr.shape != shape:
            raise CodecError(f"tensor {name!r} has shape {list(arr.shape)}, expected {list(shape)}")
        if dtype.kind == "f":
            finite = np.isfinite(arr)
            if not finite.all():
                where = _first_bad(~finite)
                raise CodecError(f"tensor {name!r} has a non-finite value (NaN/inf) at {where}")

    actions, mask = arrays["actions"], None
    if spec.num_actions is not None:
        low, high = int(actions.min()), int(actions.max())
        if low < 0 or high >= spec.num_actions:
            bad = low if low < 0 else high
            raise CodecError(f"tensor 'actions' has value {bad}, outside [0, {spec.num_actions})")
        raw_mask = arrays["action_mask"]
        if int(raw_mask.max()) > 1:
            raise CodecError("tensor 'action_mask' must hold only 0 and 1")
        mask = raw_mask.view(np.bool_)
        allowed = mask[np.arange(spec.chunk_length), actions]
        if not allowed.all():
            step = int(np.argmin(allowed))
            raise CodecError(
                f"action {int(actions[step])} at step {step} is not allowed by 'action_mask'"
            )

    versions = arrays["policy_versions"]
    if int(versions.min()) < 0:
        raise CodecError("tensor 'policy_versions' has a negative version")
    if spec.chunk_length > 1 and bool((np.diff(versions) < 0).any()):
        raise CodecError("tensor 'policy_versions' decreases within the chunk")

    for key in ("job", "actor_id"):
        if not meta.get(key):
            raise CodecError(f"chunk metadata is missing {key!r}")
    if job is not None and meta["job"] != job:
        raise CodecError(f"chunk belongs to job {meta['job']!r}, expected {job!r}")
    return TrajectoryChunk(
        obs=arrays["obs"],
        action_mask=mask,
        actions=actions,
        rewards=arrays["rewards"],
        dones=arrays["dones"],
        behaviour_logp=arrays["behaviour_logp"],
        values=arrays["values"],
        policy_versions=versions,
        bootstrap_obs=arrays["bootstrap_obs"],
        job=meta["job"],
        actor_id=meta["actor_id"],
        env_index=_meta_int(meta, "env_index", "chunk"),
        sequence=_meta_int(meta, "sequence", "chunk"),
    )


WeightSpec = Mapping[str, tuple[tuple[int, ...], torch.dtype]]


def weights_spec(
    state: Mapping[str, torch.Tensor],
) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The `expected` argument of decode_weights for a model's state_dict."""
    return {name: (tuple(t.shape), t.dtype) for name, t in state.items()}


def encode_weights(
    state: Mapping[str, torch.Tensor], version: int, metadata: dict[str, str] | None = None
) -> bytes:
    """safetensors bytes of `state` (moved to CPU, contiguous) tagged with `version`."""
    meta = dict(metadata or {})
    for key in _WEIGHT_META:
        if key in meta:
            raise ValueError(f"weights metadata key {key!r} is reserved")
    if version < 0:
        raise ValueError(f"weights version must be >= 0, got {version}")
    meta.update(schema_version=str(SCHEMA_VERSION), version=str(int(version)))
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for name, tensor in state.items():
        cpu = tensor.detach().to("cpu").contiguous()
        # safetensors refuses tensors sharing storage (tied weights): copy repeats only.
        ptr = cpu.untyped_storage().data_ptr()
        if ptr in storages and cpu.numel() > 0:
            cpu = cpu.clone()
        storages.add(ptr)
        tensors[name] = cpu
    return safetensors.torch.save(tensors, metadata=meta)


def decode_weights(
    data: bytes,
    expected: WeightSpec | None = None,
    max_bytes: int = WEIGHTS_MAX_BYTES,
) -> tuple[dict[str, torch.Tensor], int, dict[str, str]]:
    """(tensors, version, metadata without the reserved keys); any defect raises CodecError."""
    if len(data) > max_bytes:
        raise CodecError(f"weights payload is {len(data)} bytes, over the limit of {max_bytes}")
    try:
        tensors = safetensors.torch.load(data)
        meta = _read_metadata(data)
    except Exception as exc:  # whatever the parser trips on, the payload is bad
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CodecError(f"weights are not valid safetensors: {reason}") from None
    _check_schema(meta, "weights")
    version = _meta_int(meta, "version", "weights")
    if expected is not None:
        _check_names(expected.keys(), tensors.keys(), "weights")
        for name, (shape, dtype) in expected.items():
            tensor = tensors[name]
            if tensor.dtype != dtype:
                raise CodecError(f"tensor {name!r} has dtype {tensor.dtype}, expected {dtype}")
            if tuple(tensor.shape) != tuple(shape):
                raise CodecError(
                    f"tensor {name!r} has shape {list(tensor.shape)}, expected {list(shape)}"
                )
    for name, tensor in tensors.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(
            torch.isfinite(tensor).all()
        ):
            raise CodecError(f"tensor {name!r} has a non-finite value (NaN/inf)")
    user_meta = {k: v for k, v in meta.items() if k not in _WEIGHT_META}
    return tensors, version, user_meta
