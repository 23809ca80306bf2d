"""Fixed-length trajectory chunks, filled step by step into preallocated numpy buffers
(no per-step allocation) and handed out as `TrajectoryChunk`s, and the pool of chunk
tracks an actor's agents take turns filling."""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

import numpy as np

from core.codec import TrajectoryChunk


class ChunkBuilder:
    """Collects the learning side's transitions of one track (`TrackPool`)."""

    def __init__(
        self,
        job: str,
        actor_id: str,
        env_index: int,
        obs_dim: int,
        num_actions: int,
        chunk_length: int,
        start_sequence: int = 0,
        continuous: bool = False,
    ):
        self.job, self.actor_id, self.env_index = job, actor_id, env_index
        self.length = chunk_length
        self.sequence = start_sequence
        t = chunk_length
        self._obs = np.zeros((t, obs_dim), np.float32)
        # Discrete chunks always carry a mask (all legal when the env has none), so the
        # learner sees one wire format per job; continuous ones carry float actions.
        self._mask = None if continuous else np.ones((t, num_actions), np.uint8)
        self._actions = (
            np.zeros((t, num_actions), np.float32) if continuous else np.zeros(t, np.int64)
        )
        self._rewards = np.zeros(t, np.float32)
        self._dones = np.zeros(t, np.bool_)
        self._logp = np.zeros(t, np.float32)
        self._values = np.zeros(t, np.float32)
        self._versions = np.zeros(t, np.int64)
        self._n = 0

    @property
    def full(self) -> bool:
        return self._n == self.length

    @property
    def oldest_version(self) -> int | None:
        """The behaviour version of the chunk's first step; None while it is empty."""
        return int(self._versions[0]) if self._n else None

    def add(
        self,
        obs: np.ndarray,
        mask: np.ndarray | None,
        action: int | np.ndarray,
        logp: float,
        value: float,
        version: int,
        reward: float,
        done: bool,
    ) -> None:
        i = self._n
        self._obs[i] = obs
        if mask is not None and self._mask is not None:
            self._mask[i] = mask
        self._actions[i] = action
        self._logp[i] = logp
        self._values[i] = value
        self._versions[i] = version
        self._rewards[i] = reward
        self._dones[i] = done
        self._n += 1

    def take(self, bootstrap_obs: np.ndarray) -> TrajectoryChunk:
        """The full chunk (copies, so the buffers can be refilled at once)."""
        assert self.full, "chunk is not full yet"
        chunk = TrajectoryChunk(
            obs=self._obs.copy(),
            action_mask=None if self._mask is None else self._mask.copy(),
            actions=self._actions.copy(),
            rewards=self._rewards.copy(),
            dones=self._dones.copy(),
            behaviour_logp=self._logp.copy(),
            values=self._values.copy(),
            policy_versions=self._versions.copy(),
            bootstrap_obs=np.asarray(bootstrap_obs, np.float32).copy(),
            job=self.job,
            actor_id=self.actor_id,
            env_index=self.env_index,
            sequence=self.sequence,
        )
        self.sequence += 1
        self._n = 0
        return chunk


class HasChunks(Protocol):
    chunks: ChunkBuilder


TrackT = TypeVar("TrackT", bound=HasChunks)


class TrackPool(Generic[TrackT]):
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

    def __init__(self, tracks: list[TrackT]) -> None:
        if not tracks:
            raise ValueError("a track pool needs tracks")
        self._all = list(tracks)
        self._empty = list(reversed(tracks))  # idle, nothing in them; pop() takes the first
        self._partial: list[TrackT] = []  # idle, part-filled

    def take(self) -> TrackT:
        """The stalest idle part-filled track, else an empty one."""
        if self._partial:
            return self._partial.pop(self._stalest())
        if not self._empty:
            raise RuntimeError("more agents hold tracks than the pool has")
        return self._empty.pop()

    def give_back(self, track: TrackT) -> None:
        """`track`'s agent finished its episode (its last transition ended it)."""
        (self._partial if track.chunks.oldest_version is not None else self._empty).append(track)

    def after_chunk(self, track: TrackT) -> TrackT:
        """The track to continue with after `track`'s chunk went out (it is empty now)."""
        if not self._partial:
            return track
        stale = self._partial.pop(self._stalest())
        self._empty.append(track)
        return stale

    def tracks(self) -> list[TrackT]:
        """All of them, idle or held."""
        return list(self._all)

    def _stalest(self) -> int:
        versions = [t.chunks.oldest_version for t in self._partial]
        return min(range(len(versions)), key=lambda i: versions[i] or 0)
