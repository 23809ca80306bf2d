"""Write RGB frames to a GIF (Pillow) or an MP4 (imageio + its bundled ffmpeg).

The file appears only once it is complete: frames go to a hidden partial file that is
renamed over `path` on `close()`, so a replay that fails half way leaves nothing a
player would open. Imports numpy, Pillow and imageio only, so the CLI can check `--out`
before anything loads MuJoCo.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

import numpy as np
from PIL import Image

SUFFIXES = (".gif", ".mp4")
GIF_MAX_FPS = 50  # GIF delays are in 1/100 s, and viewers slow delays under 2 to 10


class VideoError(ValueError):
    """A video path or setting the user can fix."""


def check_video_path(path: Path) -> str:
    """The format ("gif" or "mp4") `path` asks for, or a VideoError."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise VideoError(f"--out must end in .gif or .mp4, got {path.name!r}")
    return suffix[1:]


def even_frame(frame: np.ndarray) -> np.ndarray:
    """Crops a trailing row/column so both sides are even: H.264 in yuv420p needs it."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


class VideoWriter:
    """`append` uint8 frames of one size (H, W, 3); `close` finishes the file."""

    def __init__(self, path: Path, fps: float) -> None:
        self.format = check_video_path(path)
        self.path = path
        # Same suffix: ffmpeg picks the container from the file name.
        self._partial = path.with_name(f".{path.stem}.partial{path.suffix}")
        self.fps = min(fps, GIF_MAX_FPS) if self.format == "gif" else fps
        self.frames = 0
        self.shape: tuple[int, int] | None = None  # (height, width)
        self._gif: list[Image.Image] = []
        self._mp4 = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(even_frame(frame[..., :3]), dtype=np.uint8)
        if self.shape is None:
            self.shape = (frame.shape[0], frame.shape[1])
        elif frame.shape[:2] != self.shape:
            raise VideoError(f"frame size {frame.shape[:2]} differs from the first {self.shape}")
        if self.format == "gif":
            # Palette images take a third of RGB's memory; Pillow keeps them until close().
            self._gif.append(Image.fromarray(frame).quantize(colors=256))
        else:
            if self._mp4 is None:
                import imageio.v2 as imageio  # the ffmpeg plugin is only needed for MP4

                self._mp4 = imageio.get_writer(
                    self._partial,
                    format="FFMPEG",
                    fps=self.fps,
                    codec="libx264",
                    pixelformat="yuv420p",  # what browsers and phones play
                    quality=8,
                    macro_block_size=2,  # even sides suffice; 16 would rescale most sizes
                    ffmpeg_log_level="error",
                )
            self._mp4.append_data(frame)
        self.frames += 1

    def close(self) -> None:
        """Finishes the file and moves it to `path`."""
        if self.frames == 0:
            raise VideoError("no frames to write")
        if self.format == "gif":
            first, *rest = self._gif
            first.save(
                self._partial,
                format="GIF",
                save_all=True,
                append_images=rest,
                duration=round(1000 / self.fps),
                loop=0,
            )
            self._gif = []
        else:
            assert self._mp4 is not None
            self._mp4.close()
            self._mp4 = None
        os.replace(self._partial, self.path)

    def discard(self) -> None:
        """Drops what was written (after an error)."""
        if self._mp4 is not None:
            try:
                self._mp4.close()
            finally:
                self._mp4 = None
        self._gif = []
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()
