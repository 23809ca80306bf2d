"""`selfplay replay` end to end: a real (tiny) sumo_disc run dir, the real CLI in a child
process (MuJoCo picks its GL backend at import), real GIF/MP4 files decoded back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image, ImageSequence
from test_end_to_end import selfplay
from test_rollout_learner import TOKEN, make_parts, tiny_config, train_until_starved

from actors.replay import HOLD_SECONDS
from core.config import LeagueSettings, dump_config, load_config
from envs.headless_gl import unavailable, use_headless_gl
from league.client import LeagueClient
from league.server import LeagueServer
from transport.redis import RedisEndpoint

ROOT = Path(__file__).resolve().parents[1]
EPISODE_STEPS = 40  # the run's env.kwargs.max_steps: short episodes, cheap videos


@pytest.fixture(scope="module")
def sumo_run(redis_server: RedisEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run dir as `selfplay run configs/sumo_disc.yaml` leaves it (config.yaml, a learner
    checkpoint, a snapshot), trained on a few chunks in-process: no Ray, seconds not minutes."""
    run_dir = tmp_path_factory.mktemp("sumo_run")
    base = load_config(ROOT / "configs" / "sumo_disc.yaml")
    kwargs = {**base.env.kwargs, "max_steps": EPISODE_STEPS}
    cfg = tiny_config("replaytest", {"name": base.env.name, "api": base.env.api, "kwargs": kwargs})
    server = LeagueServer(run_dir / "league.db", token=TOKEN, settings=LeagueSettings(seed=0))
    server.start()
    league = LeagueClient(server.address, TOKEN)
    client = redis_server.client()
    try:
        learner, worker, _ = make_parts(cfg, client, league, run_dir)
        worker.run(lambda: False, max_steps=60)
        worker.league.close()
        assert train_until_starved(learner) > 0
        learner.snapshot()
        learner.checkpoint()
    finally:
        client.close()
        league.close()
        server.stop(0)
    (run_dir / "config.yaml").write_text(dump_config(cfg))
    return run_dir


def replay(*args: str) -> dict[str, object]:
    """Runs `selfplay replay ... --json`; skips when this machine cannot render."""
    proc = selfplay("replay", *args, "--json")
    if proc.returncode == 2 and "MuJoCo offscreen rendering" in proc.stderr:
        pytest.skip(f"no headless GL here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def all_alike(frames: list[np.ndarray]) -> bool:
    return all(np.array_equal(frames[0], f) for f in frames[1:])


def test_gif_replays_the_games_eval_scores(sumo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "match.gif"
    fps = 20
    result = replay(
        str(sumo_run), "--out", str(out), "--opponent", "charge", "--episodes", "2",
        "--size", "64", "--fps", str(fps), "--no-caption",
    )  # fmt: skip
    hold = round(fps * HOLD_SECONDS)
    episodes = result["episodes"]
    assert isinstance(episodes, list) and len(episodes) == 2
    assert [e["policy_agent"] for e in episodes] == ["agent_0", "agent_1"]  # seats alternate
    for e in episodes:
        assert 0 < e["steps"] <= EPISODE_STEPS and e["frames"] == e["steps"] + hold
        assert e["winner"] in ("policy", "opponent", "draw") and e["reason"]
    assert result["frames"] == sum(e["frames"] for e in episodes)
    assert (result["width"], result["height"], result["fps"]) == (64, 64, fps)

    with Image.open(out) as gif:
        assert gif.size == (64, 64)
        frames, duration_ms = [], 0
        for frame in ImageSequence.Iterator(gif):
            frames.append(np.asarray(frame.convert("RGB")))
            duration_ms += frame.info["duration"]
    # Pillow merges identical consecutive frames (the held last one, a disc too slow to
    # move a pixel) into longer ones, so the playing time is what counts every frame.
    assert duration_ms == result["frames"] * 1000 // fps
    assert not all_alike(frames)
    assert not list(tmp_path.glob(".*partial*"))  # the partial file was renamed

    # Same seed, same seats: the replayed games are the ones eval scores.
    scored = selfplay("eval", str(sumo_run), "--opponent", "charge", "--games", "2", "--json")
    assert scored.returncode == 0, scored.stderr[-3000:]
    tally = json.loads(scored.stdout)
    winners = [e["winner"] for e in episodes]
    assert (tally["wins"], tally["draws"], tally["losses"]) == (
        winners.count("policy"),
        winners.count("draw"),
        winners.count("opponent"),
    )


def test_mp4_against_a_snapshot_cut_at_max_steps(sumo_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    snapshot = next((sumo_run / "snapshots").glob("main@v*.safetensors")).stem
    fps, steps = 25, 12
    result = replay(
        str(sumo_run), "--out", str(out), "--opponent", f"snapshot:{snapshot}",
        "--size", "96", "--fps", str(fps), "--max-steps", str(steps),
    )  # fmt: skip
    (episode,) = result["episodes"]  # type: ignore[misc]
    assert episode["winner"] == "unfinished" and episode["reason"] == "max_steps"
    assert episode["steps"] == steps
    assert episode["frames"] == result["frames"] == steps + round(fps * HOLD_SECONDS)

    reader = imageio.get_reader(out, format="FFMPEG")
    try:
        frames = [np.asarray(f) for f in reader]
        assert reader.get_meta_data()["fps"] == fps
    finally:
        reader.close()
    assert len(frames) == result["frames"]
    assert frames[0].shape == (96, 96, 3)
    assert not all_alike(frames[:steps])  # the discs move (and the caption's step counter)


def test_bad_video_suffix_is_one_line_error(tmp_path: Path) -> None:
    bad = selfplay("replay", str(tmp_path), "--out", str(tmp_path / "match.avi"))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --out must end in .gif or .mp4, got 'match.avi'"
    ]
    assert not list(tmp_path.iterdir())


def test_unusable_gl_is_one_line_error(sumo_run: Path, tmp_path: Path) -> None:
    # A real GL failure without uninstalling anything: mujoco's OSMesa backend refuses to
    # load when PyOpenGL is pinned to EGL, at import, where a missing libOSMesa fails too.
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "egl"}
    out = tmp_path / "match.gif"
    bad = selfplay("replay", str(sumo_run), "--out", str(out), env=env)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("error: MuJoCo offscreen rendering with MUJOCO_GL=osmesa failed")
    assert line.endswith("unset PYOPENGL_PLATFORM or set it to osmesa")
    assert not out.exists()


def test_missing_gl_library_names_the_apt_package() -> None:
    # What PyOpenGL raises when the backend's shared library is not installed.
    missing = ImportError("Unable to load OpenGL library", "libOSMesa.so.8: cannot open")
    assert str(unavailable("osmesa", missing)).endswith("apt-get install libosmesa6")
    assert str(unavailable("egl", missing)).endswith("apt-get install libegl1")
    assert "\n" not in str(unavailable("egl", RuntimeError("two\nlines")))


def test_gl_backend_defaults_and_respects_the_user() -> None:
    chosen: dict[str, str] = {}
    assert use_headless_gl(chosen) in ("egl", "osmesa") and chosen["MUJOCO_GL"]
    assert use_headless_gl({"MUJOCO_GL": "glfw"}) == "glfw"  # a user's choice stays
    assert use_headless_gl({"PYOPENGL_PLATFORM": "egl"}) == "egl"  # would clash otherwise
