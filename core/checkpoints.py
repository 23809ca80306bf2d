"""Atomic learner checkpoints: model + optimizer state + counters in one safetensors file.

safetensors instead of torch.save because a checkpoint is read by another process
(a resumed learner, `selfplay eval`), and nothing unpickled may cross a process
boundary. Writes go to a temporary file that is fsync-ed and then `os.replace`d, so
a crash leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save


class CheckpointError(RuntimeError):
    pass


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # The rename itself is durable only once the directory entry is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], Any]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    path: Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict[str, Any]
) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    optim_tensors, optim_meta = _optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    header = {"meta": json.dumps(meta), "optimizer": json.dumps(optim_meta)}
    atomic_write(path, save(tensors, metadata=header))


def load_checkpoint(
    path: Path, net: torch.nn.Module | None = None, optimizer: torch.optim.Optimizer | None = None
) -> dict[str, Any]:
    """Restores into net/optimizer (when given) and returns the counters dict."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header["meta"])
        optim_meta = json.loads(header["optimizer"])
    except (OSError, KeyError, ValueError, Exception) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint: {exc}") from None
    if net is not None:
        model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            net.load_state_dict(model)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: does not fit this model: {first}") from None
    if optimizer is not None:
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                state.setdefault(int(idx), {})[key] = v
        for idx, scalars in optim_meta["scalars"].items():
            state.setdefault(int(idx), {}).update(scalars)
        # JSON turns tuples (Adam's betas) into lists; torch expects them back as tuples.
        groups = [
            {
                k: (tuple(v) if isinstance(v, list) and k != "params" else v)
                for k, v in group.items()
            }
            for group in optim_meta["param_groups"]
        ]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    return meta
