"""Observation history (frame stacking) for many games: each agent sees its current
observation followed by `frames` earlier ones, `stride` control steps apart.

Why: one observation shows where the opponent is and how fast it moves, not what it has
been doing. A random bug's jitter, a charging bot and a waiting opponent can look alike at
one instant, and the right move differs (push the passive one, flank the charger): a
memoryless policy trained against all three settled on one of the moves and lost the other
opponent (BENCHMARKS.md, "sumo with two bugs"). A short history tells them apart.

Layout of one agent's stacked observation (frame = the single-step observation, size F):
`[current frame, frame from stride steps ago, from 2 * stride steps ago, ...]`, size
F * (1 + frames). A new episode's history is its first frame repeated (the agent stood
still before the start), so every observation has the same size from the first step.
"""

from __future__ import annotations

import numpy as np


class FrameHistory:
    """Past frames of N games x 2 agents; `frames=0` stacks nothing (returns the frame)."""

    def __init__(self, num_games: int, frame_dim: int, frames: int, stride: int) -> None:
        if frames < 0:
            raise ValueError(f"history frames must be >= 0, got {frames}")
        if stride < 1:
            raise ValueError(f"history stride must be >= 1, got {stride}")
        self.frames, self.stride = frames, stride
        self.frame_dim = frame_dim
        self.obs_dim = frame_dim * (1 + frames)
        # past[:, :, j] holds the frame from j + 1 steps ago: the newest past frame first.
        self._past = np.zeros((num_games, 2, frames * stride, frame_dim), np.float32)
        self._shown = slice(stride - 1, None, stride)  # steps ago: stride, 2 * stride, ...

    def stack(self, frame: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(m, 2, F) current frames of `rows` -> (m, 2, obs_dim) stacked observations."""
        if not self.frames:
            return frame
        m = len(frame)
        past = self._past[rows][:, :, self._shown].reshape(m, 2, -1)
        return np.concatenate((frame, past), axis=-1)

    def push(self, frame: np.ndarray, rows: np.ndarray | slice = slice(None)) -> None:
        """After a step: `frame` (m, 2, F) of `rows` becomes their newest past frame."""
        if self.frames:
            past = self._past[rows]
            past[:, :, 1:] = past[:, :, :-1]
            past[:, :, 0] = frame
            self._past[rows] = past

    def restart(self, frame: np.ndarray, rows: np.ndarray | slice = slice(None)) -> None:
        """New episodes in `rows`: their history is their first frame (m, 2, F) repeated."""
        if self.frames:
            self._past[rows] = frame[:, :, None, :]
