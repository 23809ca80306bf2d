"""benchmarks/rllib_selfplay.py keeps building against the installed RLlib: its PPO config,
envs and RLModules for connect_four (action masking) and sumo disc (Gaussian), without Ray.
One tiny end-to-end training run is marked slow."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from core.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    name = "rllib_selfplay"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _linear_shapes(module: torch.nn.Module) -> list[tuple[int, int]]:
    return [
        (layer.in_features, layer.out_features)
        for layer in module.modules()
        if isinstance(layer, torch.nn.Linear)
    ]


def _module(config: Any, env: Any) -> Any:
    return config.get_multi_rl_module_spec(env=env).build()["main"]


def test_connect_four_config_env_and_masked_module() -> None:
    from ray.rllib.core.columns import Columns
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
        ActionMaskingTorchRLModule,
    )

    rs = _script()
    job = load_config(ROOT / "configs" / "connect_four.yaml")
    config = rs.build_config(job, num_env_runners=0, envs_per_runner=2)
    assert config.train_batch_size_per_learner == 64 * 32
    assert config.minibatch_size == 512 and config.num_epochs == 4
    assert config.num_envs_per_env_runner == 2 and config.count_steps_by == "agent_steps"
    assert config.policy_mapping_fn("player_1", None) == "main"

    env = rs.make_env(rs.env_config_of(job))
    obs, _ = env.reset(seed=0)
    (agent,) = obs
    assert obs[agent]["observations"].shape == (84,)
    assert obs[agent]["action_mask"].dtype == np.float32
    obs, rewards, terms, _, _ = env.step({agent: 3})
    assert len(obs) == 1 and not terms["__all__"]

    module = _module(config, env)
    assert isinstance(module, ActionMaskingTorchRLModule)
    # One shared 256x256 torso (our PolicyValueNet), linear policy (7) and value (1) heads.
    assert sorted(_linear_shapes(module)) == sorted([(84, 256), (256, 256), (256, 7), (256, 1)])
    mask = torch.zeros(3, 7)
    mask[:, 2] = 1.0
    batch = {Columns.OBS: {"observations": torch.zeros(3, 84), "action_mask": mask}}
    logits = module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (3, 7) and bool((logits.argmax(-1) == 2).all())
    env.close()


def test_sumo_disc_config_env_and_gaussian_module() -> None:
    from ray.rllib.core.columns import Columns

    rs = _script()
    job = load_config(ROOT / "configs" / "sumo_disc.yaml")
    config = rs.build_config(job)
    assert config.num_env_runners == 1 and config.num_envs_per_env_runner == 32

    env = rs.make_env(rs.env_config_of(job))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"agent_0", "agent_1"} and obs["agent_0"].shape == (34,)
    obs, rewards, terms, truncs, _ = env.step({a: np.zeros(2, np.float32) for a in obs})
    assert set(rewards) == {"agent_0", "agent_1"} and "__all__" in terms

    module = _module(config, env)
    # 64x64 tanh torso shared by a 2-d Gaussian mean head and the value head;
    # the log-std is a free parameter (free_log_std), as in our net.
    assert sorted(_linear_shapes(module)) == sorted([(34, 64), (64, 64), (64, 2), (64, 1)])
    out = module.forward_exploration({Columns.OBS: torch.zeros(5, 34)})
    assert out[Columns.ACTION_DIST_INPUTS].shape == (5, 4)  # means and log-stds
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["connect_four.yaml", "sumo_disc.yaml"])
def test_tiny_training_run_counts_actions(config_name: str) -> None:
    rs = _script()
    job = load_config(ROOT / "configs" / config_name, ["algorithm.batch_chunks=8"])
    figures = rs.run(job, seconds=1.0, num_env_runners=1, envs_per_runner=4)
    assert figures["iterations"] >= 1 and figures["agent_steps_per_s"] > 0
    per_env_step = figures["agent_steps"] / figures["env_steps"]
    expected = 1.0 if config_name == "connect_four.yaml" else 2.0
    assert per_env_step == pytest.approx(expected, rel=0.05)
