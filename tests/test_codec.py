"""Wire codec: round trips, and every defect is a one-line CodecError naming the culprit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch

from core.codec import (
    SCHEMA_VERSION,
    ChunkSpec,
    CodecError,
    TrajectoryChunk,
    decode_chunk,
    decode_weights,
    encode_chunk,
    encode_weights,
    weights_spec,
)

T, OBS, A, ACT_DIM = 6, 5, 4, 3
STORED = frozenset({"behaviour_logp", "values"})  # what an actor-critic policy records
DISCRETE = ChunkSpec(obs_dim=OBS, chunk_length=T, num_actions=A, optional=STORED)
CONTINUOUS = ChunkSpec(obs_dim=OBS, chunk_length=T, action_dim=ACT_DIM, optional=STORED)


def make_chunk(discrete: bool = True, seed: int = 0) -> TrajectoryChunk:
    rng = np.random.default_rng(seed)
    if discrete:
        mask = rng.random((T, A)) < 0.5
        actions = rng.integers(0, A, T)
        mask[np.arange(T), actions] = True
    else:
        mask, actions = None, rng.standard_normal((T, ACT_DIM)).astype(np.float32)
    return TrajectoryChunk.of(
        obs=rng.standard_normal((T, OBS)).astype(np.float32),
        action_mask=mask,
        actions=actions,
        rewards=rng.standard_normal(T).astype(np.float32),
        dones=np.array([0, 0, 1, 0, 0, 0], dtype=bool),
        behaviour_logp=-rng.random(T).astype(np.float32),
        values=rng.standard_normal(T).astype(np.float32),
        policy_versions=np.array([3, 3, 3, 4, 4, 4]),
        bootstrap_obs=rng.standard_normal(OBS).astype(np.float32),
        job="sumo",
        actor_id="actor-7",
        env_index=2,
        sequence=41,
    )


def wire(chunk: TrajectoryChunk) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata encode_chunk would write, for tampering with."""
    data = encode_chunk(chunk)
    size = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + size])["__metadata__"]
    return {k: v.copy() for k, v in safetensors.numpy.load(data).items()}, meta


def raw(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> bytes:
    return safetensors.numpy.save(tensors, metadata=meta)


def rejected(data: bytes, spec: ChunkSpec = DISCRETE) -> str:
    with pytest.raises(CodecError) as info:
        decode_chunk(data, spec)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("discrete", [True, False])
def test_chunk_round_trip(discrete: bool) -> None:
    chunk = make_chunk(discrete)
    spec = DISCRETE if discrete else CONTINUOUS
    out = decode_chunk(encode_chunk(chunk), spec, job="sumo")
    assert sorted(out.names()) == sorted(chunk.names()) == sorted(spec.tensor_specs())
    for name in chunk.names():
        np.testing.assert_array_equal(out[name], chunk[name])
    for key in ("job", "actor_id", "env_index", "sequence"):
        assert getattr(out, key) == getattr(chunk, key)
    assert out.obs.dtype == np.float32 and out.dones.dtype == np.bool_
    assert out.policy_versions.dtype == np.int64
    if discrete:
        assert out.action_mask is not None and out.action_mask.dtype == np.bool_
        assert out.actions.dtype == np.int64
    else:
        assert out.action_mask is None and out.actions.dtype == np.float32
    assert out.policy_version == 3 and out.num_steps == T


def test_spec_validation_and_default_limit() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ChunkSpec(obs_dim=3, chunk_length=4)
    with pytest.raises(ValueError, match="exactly one"):
        ChunkSpec(obs_dim=3, chunk_length=4, num_actions=2, action_dim=2)
    assert DISCRETE.max_bytes is not None and DISCRETE.max_bytes > DISCRETE.expected_bytes
    assert len(encode_chunk(make_chunk())) < DISCRETE.max_bytes


def test_corrupt_and_truncated_bytes() -> None:
    data = encode_chunk(make_chunk())
    assert "not valid safetensors" in rejected(b"\x00garbage" * 10)
    assert "not valid safetensors" in rejected(data[: len(data) // 2])
    assert "not valid safetensors" in rejected(data[:5])
    assert "not valid safetensors" in rejected(b"")


def test_oversize_rejected_before_parsing() -> None:
    small = ChunkSpec(obs_dim=OBS, chunk_length=T, num_actions=A, optional=STORED, max_bytes=2000)
    message = rejected(b"\xff" * 2001, small)  # not even safetensors: size comes first
    assert "over the limit of 2000" in message


def test_missing_and_extra_tensors() -> None:
    tensors, meta = wire(make_chunk())
    del tensors["values"]
    assert "missing tensor(s) 'values'" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["secret"] = np.zeros(3, np.float32)
    assert "unexpected tensor(s) 'secret'" in rejected(raw(tensors, meta))
    # A continuous chunk carries no mask; a discrete spec wants one.
    tensors, meta = wire(make_chunk(discrete=False))
    assert "missing tensor(s) 'action_mask'" in rejected(raw(tensors, meta))


def test_wrong_dtype_and_shape() -> None:
    tensors, meta = wire(make_chunk())
    tensors["obs"] = tensors["obs"].astype(np.float64)
    assert "'obs' has dtype float64, expected float32" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["rewards"] = np.zeros(T + 1, np.float32)
    assert "'rewards' has shape [7], expected [6]" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["action_mask"] = np.ones((T, A + 1), np.uint8)
    assert "'action_mask' has shape" in rejected(raw(tensors, meta))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["obs", "rewards", "behaviour_logp", "values", "bootstrap_obs"])
def test_non_finite_values(name: str, bad: float) -> None:
    tensors, meta = wire(make_chunk())
    tensors[name].reshape(-1)[-1] = bad
    assert f"'{name}' has a non-finite value" in rejected(raw(tensors, meta))


def test_non_finite_continuous_action() -> None:
    tensors, meta = wire(make_chunk(discrete=False))
    tensors["actions"][1, 2] = np.nan
    assert "'actions' has a non-finite value (NaN/inf) at (1, 2)" in rejected(
        raw(tensors, meta), CONTINUOUS
    )


def test_illegal_masked_action_and_out_of_range() -> None:
    tensors, meta = wire(make_chunk())
    tensors["action_mask"][4, tensors["actions"][4]] = 0
    assert "at step 4 is not allowed by 'action_mask'" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["actions"][0] = A
    assert f"value {A}, outside [0, {A})" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["actions"][0] = -1
    assert "value -1" in rejected(raw(tensors, meta))
    tensors, meta = wire(make_chunk())
    tensors["action_mask"][0, 0] = 7
    assert "only 0 and 1" in rejected(raw(tensors, meta))


def test_bad_policy_versions() -> None:
    tensors, meta = wire(make_chunk())
    tensors["policy_versions"][-1] = 1
    assert "decreases" in rejected(raw(tensors, meta))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("job", None, "missing 'job'"),
        ("actor_id", "", "missing 'actor_id'"),
        ("env_index", "two", "'env_index' must be a non-negative integer"),
        ("sequence", "-1", "'sequence' must be a non-negative integer"),
        ("sequence", None, "missing 'sequence'"),
        ("schema_version", None, "missing 'schema_version'"),
        ("schema_version", str(SCHEMA_VERSION + 1), "schema version 2, expected 1"),
    ],
)
def test_bad_metadata(key: str, value: str | None, expected: str) -> None:
    tensors, meta = wire(make_chunk())
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    assert expected in rejected(raw(tensors, meta))


def test_wrong_job_rejected() -> None:
    with pytest.raises(CodecError, match="belongs to job 'sumo'"):
        decode_chunk(encode_chunk(make_chunk()), DISCRETE, job="other")


def small_model_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    return model.state_dict()


def test_weights_round_trip() -> None:
    state = small_model_state()
    data = encode_weights(state, 12, {"player": "main"})
    tensors, version, meta = decode_weights(data, weights_spec(state))
    assert version == 12 and meta == {"player": "main"}
    assert tensors.keys() == state.keys()
    for name, tensor in state.items():
        assert torch.equal(tensors[name], tensor)


def test_weights_non_contiguous_and_tied() -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = {"t": base.t(), "a": base, "b": base}  # transposed view + tied weights
    tensors, _, _ = decode_weights(encode_weights(state, 1))
    assert torch.equal(tensors["t"], base.t()) and torch.equal(tensors["b"], base)


def test_weights_rejections() -> None:
    state = small_model_state()
    spec = weights_spec(state)
    data = encode_weights(state, 3)

    def rejects(payload: bytes, match: str, **kwargs: object) -> None:
        with pytest.raises(CodecError, match=match):
            decode_weights(payload, **kwargs)  # type: ignore[arg-type]

    rejects(data, "over the limit", max_bytes=len(data) - 1)
    rejects(data[:-10], "not valid safetensors")
    rejects(
        encode_weights({k: v for k, v in state.items() if k != "2.bias"}, 3),
        "missing",
        expected=spec,
    )
    rejects(encode_weights({**state, "extra": torch.zeros(1)}, 3), "unexpected", expected=spec)
    rejects(encode_weights({**state, "0.bias": torch.zeros(8).double()}, 3), "dtype", expected=spec)
    rejects(encode_weights({**state, "0.bias": torch.zeros(9)}, 3), "shape", expected=spec)
    nan = state["0.weight"].clone()
    nan[0, 0] = float("nan")
    rejects(encode_weights({**state, "0.weight": nan}, 3), "'0.weight' has a non-finite")
    bad_schema = safetensors.torch.save(
        {"x": torch.zeros(1)}, {"schema_version": "9", "version": "1"}
    )
    rejects(bad_schema, "schema version 9")
    no_version = safetensors.torch.save({"x": torch.zeros(1)}, {"schema_version": "1"})
    rejects(no_version, "missing 'version'")
    with pytest.raises(ValueError, match="reserved"):
        encode_weights(state, 1, {"version": "2"})


def test_optional_fields_follow_the_spec() -> None:
    """The table's optional fields travel exactly when the spec names them: a chunk with
    goals and success flags for a goal-conditioned job, and none of them otherwise."""
    rng = np.random.default_rng(3)
    goals = {"desired_goal", "achieved_goal", "is_success", "recurrent_state"}
    spec = ChunkSpec(obs_dim=OBS, chunk_length=T, action_dim=2, optional=goals, goal_dim=3,
                     state_dim=4)  # fmt: skip
    chunk = TrajectoryChunk.of(
        "goal", "actor-1", 0, 0,
        obs=rng.standard_normal((T, OBS)).astype(np.float32),
        actions=rng.standard_normal((T, 2)).astype(np.float32),
        rewards=np.zeros(T, np.float32), dones=np.zeros(T, bool),
        policy_versions=np.zeros(T, np.int64), bootstrap_obs=np.zeros(OBS, np.float32),
        desired_goal=rng.standard_normal((T, 3)).astype(np.float32),
        achieved_goal=rng.standard_normal((T, 3)).astype(np.float32),
        is_success=np.array([0, 0, 0, 0, 1, 1], bool),
        recurrent_state=np.ones(4, np.float32),
    )  # fmt: skip
    out = decode_chunk(encode_chunk(chunk), spec)
    assert out.is_success.tolist() == [False] * 4 + [True] * 2
    assert out.behaviour_logp is None and out.values is None  # not in this spec
    np.testing.assert_array_equal(out.desired_goal, chunk.desired_goal)
    tensors, meta = wire(chunk)
    del tensors["is_success"]
    assert "missing tensor(s) 'is_success'" in rejected(raw(tensors, meta), spec)
    assert "unexpected tensor(s) 'behaviour_logp', 'values'" in rejected(
        encode_chunk(make_chunk(discrete=False)),
        ChunkSpec(obs_dim=OBS, chunk_length=T, action_dim=ACT_DIM),
    )
    with pytest.raises(ValueError, match="no optional chunk fields"):
        ChunkSpec(obs_dim=OBS, chunk_length=T, num_actions=A, optional={"obs"})
    with pytest.raises(ValueError, match="goal_dim > 0 exactly when"):
        ChunkSpec(obs_dim=OBS, chunk_length=T, num_actions=A, optional={"desired_goal"})
