"""`selfplay replay`: games of a trained policy rendered to a GIF or MP4 a person can watch.

The players, seats and seeds are `selfplay eval`'s (`load_players`, `seats`,
`choose_actions`): episode k of `replay --seed S` is game k that `eval --seed S` scores.
The env is built with render_mode="rgb_array", plus `render_size` where it takes one (the
MuJoCo sumo env); frames of other sizes are scaled to the requested width. Each frame
carries a caption (who plays which seat, the step, the verdict on the episode's last
frame, held for a moment so a viewer can read it).

This module imports mujoco (through `actors.evaluation`): call
`envs.headless_gl.use_headless_gl()` before importing it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from actors.evaluation import choose_actions, load_players, seats
from actors.video import VideoWriter, check_video_path
from core.config import JobConfig
from envs.headless_gl import unavailable
from envs.pettingzoo_adapter import EnvConfigError, Game

HOLD_SECONDS = 0.75  # the last frame of an episode stays up this long
DEFAULT_FPS = 30.0  # for envs whose metadata gives no render_fps


class ReplayError(ValueError):
    """A replay request this run or env cannot serve (one line for the CLI)."""


@dataclass(frozen=True)
class EpisodeReplay:
    episode: int  # 1-based, as printed
    policy_agent: str  # the seat the policy played
    winner: str  # "policy", "opponent", "draw" or "unfinished" (cut by max_steps)
    winner_agent: str | None
    reason: str  # the env's own ("out_of_ring", "time_limit", ...), else "game over"
    steps: int
    frames: int  # written for this episode, the held last frame included


@dataclass(frozen=True)
class ReplayResult:
    out: Path
    format: str
    opponent: str
    policy_version: int
    fps: float
    width: int
    height: int
    episodes: tuple[EpisodeReplay, ...]

    @property
    def frames(self) -> int:
        return sum(e.frames for e in self.episodes)

    def as_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "format": self.format,
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "opponent": self.opponent,
            "policy_version": self.policy_version,
            "episodes": [asdict(e) for e in self.episodes],
        }


class _InfoTap:
    """Stands in for a parallel env inside `Game` and keeps the last step's infos: Game
    keeps only the winner, a viewer also wants the reason. AEC envs keep `infos` already."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.infos: dict[str, Any] = {}

    def step(self, actions: Mapping[str, Any]) -> Any:
        result = self.env.step(actions)
        self.infos = result[4]
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


class RenderedGame(Game):
    """A `Game` that also hands out frames and the env's reason for the end of an episode.
    A subclass (reaching into Game's env) rather than a change to the adapter, which the
    actors' hot loop runs and which has no use for either."""

    def __init__(self, name: str, api: str, kwargs: Mapping[str, Any]) -> None:
        super().__init__(name, api, kwargs)
        self.name = name
        if not self._aec:
            self._env = _InfoTap(self._env)

    def render(self) -> np.ndarray:
        frame = self._env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ReplayError(f"{self.name} rendered no rgb_array frame (got {type(frame)})")
        return frame

    def reason(self) -> str | None:
        for info in (getattr(self._env, "infos", None) or {}).values():
            if isinstance(info, dict) and info.get("reason"):
                return str(info["reason"])
        return None

    @property
    def render_fps(self) -> float | None:
        fps = (getattr(self._env, "metadata", None) or {}).get("render_fps")
        return float(fps) if fps else None


def open_game(config: JobConfig, size: int) -> RenderedGame:
    """The run's env with rgb_array rendering; `render_size` only where the env takes it."""
    env = config.env
    kwargs = {**env.kwargs, "render_mode": "rgb_array"}
    try:
        return RenderedGame(env.name, env.api, {**kwargs, "render_size": size})
    except EnvConfigError as exc:
        if "render_size" not in str(exc):
            raise ReplayError(f"{env.name} cannot render rgb_array frames: {exc}") from None
    try:
        return RenderedGame(env.name, env.api, kwargs)
    except EnvConfigError as exc:
        raise ReplayError(f"{env.name} cannot render rgb_array frames: {exc}") from None


def _scaled(frame: np.ndarray, width: int) -> np.ndarray:
    if frame.shape[1] == width:
        return frame
    height = max(2, round(frame.shape[0] * width / frame.shape[1]))
    return np.asarray(Image.fromarray(frame[..., :3]).resize((width, height), Image.BILINEAR))


@lru_cache(maxsize=8)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(px)


def _captioned(frame: np.ndarray, top: list[str], bottom: str | None = None) -> np.ndarray:
    """White text with a dark outline, readable on the floor and on the ring."""
    image = Image.fromarray(frame[..., :3])
    draw = ImageDraw.Draw(image)
    px = max(8, image.height // 24)
    style: dict[str, Any] = {"fill": "white", "stroke_fill": "black", "font": _font(px)}
    style["stroke_width"] = max(1, px // 10)
    for i, line in enumerate(top):
        draw.text((3, 2 + i * (px + 3)), line, **style)
    if bottom:
        draw.text((3, image.height - px - 6), bottom, **style)
    return np.asarray(image)


def _first_render(game: RenderedGame) -> np.ndarray:
    """The first render opens the GL context, which is where a missing GL library shows."""
    try:
        return game.render()
    except ReplayError:
        raise
    except Exception as exc:  # mujoco.FatalError, PyOpenGL's errors, EGL's RuntimeError...
        raise unavailable(os.environ.get("MUJOCO_GL", ""), exc) from None


def _verdict(game: RenderedGame, me: str, other: str) -> tuple[str, str | None, str]:
    """(winner, winner's agent, reason) of a finished episode, from the policy's side."""
    outcome = game.outcome(me, other)
    winner = {"a_win": "policy", "b_win": "opponent"}.get(outcome, "draw")
    return winner, {"a_win": me, "b_win": other}.get(outcome), game.reason() or "game over"


def replay(
    run_dir: Path,
    config: JobConfig,
    out: Path,
    opponent: str = "random",
    episodes: int = 1,
    seed: int = 0,
    size: int = 320,
    fps: float | None = None,
    policy_id: str | None = None,
    max_steps: int | None = None,
    greedy: bool = True,
    caption: bool = True,
) -> ReplayResult:
    """Plays `episodes` games as `selfplay eval` would and writes them, one after the
    other, to `out` (.gif or .mp4). `max_steps` cuts an episode short ("unfinished")."""
    fmt = check_video_path(out)
    game = open_game(config, size)
    try:
        gen = torch.Generator().manual_seed(seed)  # drawn exactly as evaluate draws
        policy, version, opp = load_players(run_dir, config, game.teams, opponent, gen, policy_id)
        rng = np.random.default_rng(seed)
        writer = VideoWriter(out, fps or game.render_fps or DEFAULT_FPS)
        hold = max(1, round(writer.fps * HOLD_SECONDS))
        who = f"policy {policy_id or f'v{version}'}"
        played: list[EpisodeReplay] = []
        with writer:  # a failure discards the partial file
            for g in range(episodes):
                me, other = seats(game.spec.agents, g)
                game.reset(seed=int(rng.integers(2**31)))
                players = f"{who} ({me}) vs {opponent}"
                frame = _scaled(_first_render(game) if g == 0 else game.render(), size)
                start, steps = writer.frames, 0
                states: dict[str, np.ndarray] = {}  # recurrent players' memory, this episode
                while not game.done and (max_steps is None or steps < max_steps):
                    if caption:
                        frame = _captioned(
                            frame, [players, f"episode {g + 1}/{episodes}  step {steps}"]
                        )
                    writer.append(frame)
                    game.step(choose_actions(game, me, policy, opp, rng, greedy, states))
                    steps += 1
                    frame = _scaled(game.render(), size)
                if game.done:
                    winner, winner_agent, reason = _verdict(game, me, other)
                else:
                    winner, winner_agent, reason = "unfinished", None, "max_steps"
                if caption:
                    verdict = f"winner: {winner}" + (f" ({winner_agent})" if winner_agent else "")
                    top = [players, f"episode {g + 1}/{episodes}  step {steps}"]
                    frame = _captioned(frame, top, f"{verdict}, {reason}")
                for _ in range(hold):
                    writer.append(frame)
                played.append(
                    EpisodeReplay(
                        g + 1, me, winner, winner_agent, reason, steps, writer.frames - start
                    )
                )
        assert writer.shape is not None
        height, width = writer.shape
        return ReplayResult(out, fmt, opponent, version, writer.fps, width, height, tuple(played))
    finally:
        game.close()
