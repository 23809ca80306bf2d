"""Chunk tracks (actors/chunking.py): which track an agent fills, so no part-filled
chunk waits while its lineage plays elsewhere in the actor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from actors.chunking import ChunkBuilder, TrackPool

LENGTH = 4


@dataclass
class Track:
    chunks: ChunkBuilder


def _pool(n: int) -> tuple[TrackPool[Track], list[Track]]:
    tracks = [Track(ChunkBuilder("job", "actor", i, 3, 2, LENGTH)) for i in range(n)]
    return TrackPool(tracks), tracks


def _fill(track: Track, steps: int, version: int) -> None:
    for _ in range(steps):
        track.chunks.add(np.zeros(3, np.float32), None, 0, 0.0, 0.0, version, 0.0, True)


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
    held.chunks.take(np.zeros(3, np.float32))
    assert pool.after_chunk(held) is waiting
    # With nothing waiting, an agent keeps its (now empty) track.
    _fill(waiting, 1, version=4)
    waiting.chunks.take(np.zeros(3, np.float32))
    assert pool.after_chunk(waiting) is waiting
    # The empty track it left is idle again: two empty ones to take.
    assert {id(pool.take()), id(pool.take())} == {id(held), id(tracks[2])}


def test_more_holders_than_tracks_is_an_error() -> None:
    pool, _ = _pool(1)
    pool.take()
    with pytest.raises(RuntimeError, match="more agents hold tracks"):
        pool.take()
