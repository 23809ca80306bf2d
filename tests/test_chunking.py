"""Chunk tracks (actors/chunking.py): which track an agent fills, so no part-filled
chunk waits while its lineage plays elsewhere in the actor."""

from __future__ import annotations

import numpy as np
import pytest

from actors.chunking import ChunkBuilder, TrackPool
from core.chunks import ChunkSpec

LENGTH = 4


def _pool(n: int) -> tuple[TrackPool, list[ChunkBuilder]]:
    spec = ChunkSpec(obs_dim=3, chunk_length=LENGTH, num_actions=2)
    tracks = [ChunkBuilder(spec, "job", "actor", i) for i in range(n)]
    return TrackPool(tracks), tracks


def _fill(track: ChunkBuilder, steps: int, version: int) -> None:
    for _ in range(steps):
        step = {"obs": np.zeros(3, np.float32), "actions": 0, "rewards": 0.0, "dones": True}
        track.add({**step, "policy_versions": version})


def test_agents_take_the_stalest_part_filled_track_then_empty_ones() -> None:
    pool, tracks = _pool(4)
    # A game against the latest self trains two agents; both stop part-way.
    a, b = pool.take(), pool.take()
    assert (a, b) == (tracks[0], tracks[1])  # empty ones in order at first
    _fill(a, 2, version=5)
    _fill(b, 1, version=3)
    pool.give_back(a)
    pool.give_back(b)
    # The next episodes train one agent each: the older chunk first, then the other.
    assert pool.take() is b
    assert pool.take() is a
    assert pool.take() is tracks[2]


def test_an_agent_whose_chunk_went_out_moves_to_a_waiting_track() -> None:
    pool, tracks = _pool(3)
    held, waiting = pool.take(), pool.take()
    _fill(waiting, 3, version=1)
    pool.give_back(waiting)  # e.g. its game went on to an eval game, which trains none
    _fill(held, LENGTH, version=2)
    held.take(np.zeros(3, np.float32))
    assert pool.after_chunk(held) is waiting
    # With nothing waiting, an agent keeps its (now empty) track.
    _fill(waiting, 1, version=4)
    waiting.take(np.zeros(3, np.float32))
    assert pool.after_chunk(waiting) is waiting
    # The empty track it left is idle again: two empty ones to take.
    assert {id(pool.take()), id(pool.take())} == {id(held), id(tracks[2])}


def test_more_holders_than_tracks_is_an_error() -> None:
    pool, _ = _pool(1)
    pool.take()
    with pytest.raises(RuntimeError, match="more agents hold tracks"):
        pool.take()


def test_the_builder_lays_out_what_the_spec_names() -> None:
    """Buffers follow the job's chunk spec: an actor-critic job's chunks carry the stored
    log-probabilities and values, a discrete env without masks gets an all-legal mask."""
    spec = ChunkSpec(
        obs_dim=3, chunk_length=2, num_actions=2, optional={"behaviour_logp", "values"}
    )
    builder = ChunkBuilder(spec, "job", "actor", 7, start_sequence=5)
    for t in range(2):
        builder.add({"obs": np.full(3, t, np.float32), "actions": t, "rewards": 1.0 * t,
                     "dones": t == 1, "policy_versions": 4, "behaviour_logp": -0.5,
                     "values": 0.25})  # fmt: skip
    chunk = builder.take(np.ones(3, np.float32))
    assert sorted(chunk.names()) == sorted(spec.tensor_specs())
    assert chunk.actions.tolist() == [0, 1] and chunk.dones.tolist() == [False, True]
    assert chunk.action_mask.all() and chunk.behaviour_logp.tolist() == [-0.5, -0.5]
    assert (chunk.env_index, chunk.sequence) == (7, 5) and builder.sequence == 6
