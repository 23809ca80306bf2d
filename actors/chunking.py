"""Fixed-length trajectory chunks, filled step by step into preallocated numpy buffers
(no per-step allocation) and handed out as `TrajectoryChunk`s, and the pool of chunk
tracks an actor's agents take turns filling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from core.chunks import ChunkSpec, TrajectoryChunk


class ChunkBuilder:
    """Collects the learning side's transitions of one track (`TrackPool`) into buffers
    laid out by the job's `ChunkSpec` (its per-step fields, core/chunks.py)."""

    def __init__(
        self,
        spec: ChunkSpec,
        job: str,
        actor_id: str,
        env_index: int,
        start_sequence: int = 0,
    ):
        self.spec = spec
        self.job, self.actor_id, self.env_index = job, actor_id, env_index
        self.length = spec.chunk_length
        self.sequence = start_sequence
        names, buffers = [], []
        for field in spec.fields():
            if field.per_step:
                buffer = np.zeros(field.shape(spec), spec.dtype_of(field))
                if field.name == "action_mask":
                    # Discrete chunks always carry a mask (all legal when the env has
                    # none), so the learner sees one wire format per job.
                    buffer[:] = 1
                names.append(field.name)
                buffers.append(buffer)
        # The per-step fields in buffer order: `add_row` takes values in this order.
        self.step_names: tuple[str, ...] = tuple(names)
        self._buffers = buffers
        self._versions = buffers[names.index("policy_versions")]
        self._n = 0
        # A recurrent policy's state before the chunk's first step (set with that row).
        self.start_state: np.ndarray | None = None

    @property
    def full(self) -> bool:
        return self._n == self.length

    @property
    def empty(self) -> bool:
        return self._n == 0

    @property
    def oldest_version(self) -> int | None:
        """The behaviour version of the chunk's first step; None while it is empty."""
        return int(self._versions[0]) if self._n else None

    def add_row(self, values: Sequence[Any]) -> None:
        """One step: a value per per-step field, in `step_names` order (the steppers' hot
        path). None leaves the field as it is: a mask the env does not have stays all
        legal."""
        i = self._n
        for buffer, value in zip(self._buffers, values, strict=True):
            if value is not None:
                buffer[i] = value
        self._n = i + 1

    def add(self, step: Mapping[str, Any]) -> None:
        """One step, by field name (a missing field as None)."""
        self.add_row([step.get(name) for name in self.step_names])

    def take(self, bootstrap_obs: np.ndarray, **per_chunk: np.ndarray) -> TrajectoryChunk:
        """The full chunk (copies, so the buffers can be refilled at once); `per_chunk`:
        the spec's other once-per-chunk fields (a recurrent state at the start)."""
        assert self.full, "chunk is not full yet"
        arrays = {name: b.copy() for name, b in zip(self.step_names, self._buffers, strict=True)}
        arrays["bootstrap_obs"] = np.asarray(bootstrap_obs, np.float32).copy()
        arrays.update({k: np.asarray(v).copy() for k, v in per_chunk.items()})
        chunk = TrajectoryChunk(arrays, self.job, self.actor_id, self.env_index, self.sequence)
        self.sequence += 1
        self._n = 0
        return chunk


class TrackPool:
    """One lineage's chunk tracks in one actor, handed to the agents it trains.

    An agent holds one track from the start of its episode (or its last chunk boundary)
    to the end of the episode (or its next chunk boundary), so a chunk's transitions are
    one agent's, in order, except that a chunk may continue after a transition that
    ended an episode: any agent may then take it. Agents take the stalest idle
    part-filled track (its first step has the oldest behaviour version), else an empty
    one; an agent whose chunk just went out switches to such a stale track if there is
    one. So no part-filled chunk waits while its lineage is playing anywhere in the
    actor: not through games that train fewer agents than the last (a game against the
    latest self trains two), nor through eval games, which train none.
    """

    def __init__(self, tracks: list[ChunkBuilder], switch: bool = True) -> None:
        """`switch` False (recurrent policies): an agent keeps its track at a chunk
        boundary, so rows after an episode's end in a chunk always start an episode (and
        the policy's state there is zeros)."""
        if not tracks:
            raise ValueError("a track pool needs tracks")
        self.switch = switch
        self._all = list(tracks)
        self._empty = list(reversed(tracks))  # idle, nothing in them; pop() takes the first
        self._partial: list[ChunkBuilder] = []  # idle, part-filled

    def take(self) -> ChunkBuilder:
        """The stalest idle part-filled track, else an empty one."""
        if self._partial:
            return self._partial.pop(self._stalest())
        if not self._empty:
            raise RuntimeError("more agents hold tracks than the pool has")
        return self._empty.pop()

    def give_back(self, track: ChunkBuilder) -> None:
        """`track`'s agent finished its episode (its last transition ended it)."""
        (self._partial if track.oldest_version is not None else self._empty).append(track)

    def after_chunk(self, track: ChunkBuilder) -> ChunkBuilder:
        """The track to continue with after `track`'s chunk went out (it is empty now)."""
        if not self._partial or not self.switch:
            return track
        stale = self._partial.pop(self._stalest())
        self._empty.append(track)
        return stale

    def tracks(self) -> list[ChunkBuilder]:
        """All of them, idle or held."""
        return list(self._all)

    def _stalest(self) -> int:
        versions = [t.oldest_version for t in self._partial]
        return min(range(len(versions)), key=lambda i: versions[i] or 0)
