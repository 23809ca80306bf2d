"""Atomic learner checkpoints: named networks, named optimizers and counters in one
safetensors file.

safetensors instead of torch.save because a checkpoint is read by another process
(a resumed learner, `selfplay eval`), and nothing unpickled may cross a process
boundary. Writes go to a temporary file that is fsync-ed and then `os.replace`d, so
a crash leaves either the old or the new checkpoint, never half of one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
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


def _optimizer_tensors(
    name: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(
    path: Path,
    nets: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    meta: dict[str, Any],
) -> None:
    """Every net's state dict (tensors "{net}.{param}") and every optimizer's state
    ("{optimizer}.{param index}.{key}", its scalars in the header), plus `meta`."""
    clash = set(nets) & set(optimizers)
    if clash or any("." in name for name in (*nets, *optimizers)):
        raise ValueError(f"net and optimizer names must differ and hold no '.': {sorted(clash)}")
    tensors = {
        f"{name}.{k}": v.detach().cpu().contiguous()
        for name, net in nets.items()
        for k, v in net.state_dict().items()
    }
    optimizer_meta = {}
    for name, optimizer in optimizers.items():
        optim_tensors, optimizer_meta[name] = _optimizer_tensors(name, optimizer)
        tensors.update(optim_tensors)
    header = {
        "meta": json.dumps(meta),
        "nets": json.dumps(sorted(nets)),
        "optimizers": json.dumps(optimizer_meta),
    }
    atomic_write(path, save(tensors, metadata=header))


def load_checkpoint(
    path: Path,
    nets: Mapping[str, torch.nn.Module] | None = None,
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
) -> dict[str, Any]:
    """Restores the named nets and optimizers given (a subset of what the file holds:
    `selfplay eval` loads the acting net alone) and returns the meta dict."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(header["meta"])
        if "optimizers" in header:
            optimizer_meta = json.loads(header["optimizers"])
        else:  # written before named optimizers: one net "model", one optimizer "optim"
            optimizer_meta = {"optim": json.loads(header["optimizer"])}
    except (OSError, KeyError, ValueError, Exception) as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint: {exc}") from None
    for name, net in (nets or {}).items():
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{path}: has no network {name!r}")
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: does not fit this model: {first}") from None
    for name, optimizer in (optimizers or {}).items():
        if name not in optimizer_meta:
            raise CheckpointError(f"{path}: has no optimizer {name!r}")
        _load_optimizer(optimizer, name, tensors, optimizer_meta[name])
    return meta


def _load_optimizer(
    optimizer: torch.optim.Optimizer,
    name: str,
    tensors: Mapping[str, torch.Tensor],
    optimizer_meta: dict[str, Any],
) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"{name}."
    for k, v in tensors.items():
        if k.startswith(prefix):
            idx, key = k[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[key] = v
    for idx, scalars in optimizer_meta["scalars"].items():
        state.setdefault(int(idx), {}).update(scalars)
    # JSON turns tuples (Adam's betas) into lists; torch expects them back as tuples.
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in group.items()}
        for group in optimizer_meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
