"""Pick MuJoCo's headless OpenGL backend, and say which apt package is missing when it fails.

MuJoCo reads MUJOCO_GL once, when `mujoco` is first imported, so `use_headless_gl` must
run before anything imports it (the sumo env, `actors.evaluation`); this module imports
nothing of ours and mujoco only inside `import_mujoco`. A user's MUJOCO_GL always wins.
"""

from __future__ import annotations

import glob
import importlib
import os
from collections.abc import MutableMapping

# The library each headless backend loads (Debian/Ubuntu package names).
APT_PACKAGES = {"osmesa": "libosmesa6", "egl": "libegl1"}


class RenderUnavailable(RuntimeError):
    """Offscreen rendering cannot work on this machine; the message says what to install."""


def nvidia_gpu_visible() -> bool:
    # The device nodes, not torch.cuda: importing torch here would cost seconds and this
    # only decides which GL library to try.
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def use_headless_gl(environ: MutableMapping[str, str] = os.environ) -> str:
    """Sets MUJOCO_GL when unset (EGL with an NVIDIA GPU, else OSMesa, the software
    renderer that needs no display) and returns the backend in force."""
    if not environ.get("MUJOCO_GL"):
        # mujoco.egl / mujoco.osmesa refuse a PYOPENGL_PLATFORM naming the other one.
        platform = environ.get("PYOPENGL_PLATFORM", "").lower()
        if platform in APT_PACKAGES:
            environ["MUJOCO_GL"] = platform
        else:
            environ["MUJOCO_GL"] = "egl" if nvidia_gpu_visible() else "osmesa"
    return environ["MUJOCO_GL"].lower()


def unavailable(backend: str, exc: BaseException) -> RenderUnavailable:
    """One line naming the backend, what failed and the package that provides it."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    package = APT_PACKAGES.get(backend)
    if "PYOPENGL_PLATFORM" in detail:  # mujoco.egl / mujoco.osmesa refuse the other platform
        hint = f"unset PYOPENGL_PLATFORM or set it to {backend}"
    elif package:
        hint = f"apt-get install {package}"
    else:
        hint = "set MUJOCO_GL=osmesa (apt-get install libosmesa6) or egl (libegl1)"
    return RenderUnavailable(
        f"MuJoCo offscreen rendering with MUJOCO_GL={backend} failed ({detail}): {hint}"
    )


def import_mujoco(backend: str) -> None:
    """Imports mujoco under `backend`: a missing GL library shows up here (PyOpenGL
    loads it at import) and becomes a RenderUnavailable instead of a traceback."""
    try:
        importlib.import_module("mujoco")
    except (ImportError, OSError, AttributeError, RuntimeError) as exc:
        raise unavailable(backend, exc) from None
