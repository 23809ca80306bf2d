"""Wire codec: trajectory chunks (fields in core/chunks.py) and weights as safetensors
bytes (never pickle).

Decoding is the trust boundary between actors and the learner, so it checks the
size before parsing and then every name, dtype, shape and value it hands on.
"""

from __future__ import annotations

import json
from collections.abc import KeysView, Mapping

import numpy as np
import safetensors.numpy
import safetensors.torch
import torch

from core.chunks import FIELDS, ChunkSpec, TrajectoryChunk

SCHEMA_VERSION = 1
# Redis refuses bulk strings above 512 MiB (proto-max-bulk-len), so nothing larger
# can be a stored weight blob anyway.
WEIGHTS_MAX_BYTES = 512 * 1024 * 1024
_WEIGHT_META = ("schema_version", "version")


class CodecError(ValueError):
    """A payload that must not reach the learner or an actor; one line naming the culprit."""


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
    """safetensors bytes of the chunk's fields (core/chunks.py), each in its wire dtype;
    arrays already of that dtype and contiguous are not copied."""
    discrete = "action_mask" in chunk.arrays
    tensors = {}
    for field in FIELDS:
        arr = chunk.arrays.get(field.name)
        if arr is None:
            continue
        if field.name == "action_mask":
            mask = np.ascontiguousarray(arr)
            # bool -> uint8 is a free reinterpretation; anything else is normalised to 0/1.
            tensors[field.name] = (
                mask.view(np.uint8) if mask.dtype == np.bool_ else (mask != 0).astype(np.uint8)
            )
            continue
        dtype = field.dtype or (np.dtype(np.int64) if discrete else np.dtype(np.float32))
        tensors[field.name] = np.ascontiguousarray(arr, dtype=dtype)
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

    if spec.num_actions is not None:
        actions = arrays["actions"]
        low, high = int(actions.min()), int(actions.max())
        if low < 0 or high >= spec.num_actions:
            bad = low if low < 0 else high
            raise CodecError(f"tensor 'actions' has value {bad}, outside [0, {spec.num_actions})")
        raw_mask = arrays["action_mask"]
        if int(raw_mask.max()) > 1:
            raise CodecError("tensor 'action_mask' must hold only 0 and 1")
        arrays["action_mask"] = mask = raw_mask.view(np.bool_)
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
        arrays,
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
