"""Fixed-length trajectory chunks of one env, filled step by step into preallocated
numpy buffers (no per-step allocation), handed out as `TrajectoryChunk`s."""

from __future__ import annotations

import numpy as np

from cluster.codec import TrajectoryChunk


class ChunkBuilder:
    """Collects the learning side's transitions of one env slot."""

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
