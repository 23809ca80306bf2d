"""RLlib 2.60 PPO multi-agent self-play on our envs: the peer figure for our throughput.

    python benchmarks/rllib_selfplay.py --config configs/connect_four.yaml --seconds 120
    python benchmarks/rllib_selfplay.py --config configs/sumo_disc.yaml --seconds 120

What runs: RLlib's own stack end to end, new API stack (RLModule, Learner, EnvRunner):
`PPOConfig` with one shared policy "main" that every agent maps to (self-play against
the latest self, both seats trained), `num_env_runners` remote `MultiAgentEnvRunner`s
(from `actors.num_actors`) each stepping `num_envs_per_env_runner` envs (from
`actors.envs_per_actor`), and one local learner in the driver process (num_learners=0),
all on CPU. PPO is synchronous in RLlib: each `train()` samples one batch on the env
runners, then runs the SGD epochs while the runners wait.

Envs, through RLlib's own PettingZoo wrappers:
- turn-based (AEC) games such as `pettingzoo.classic.connect_four_v3`:
  `ray.rllib.env.wrappers.pettingzoo_env.PettingZooEnv`. The PettingZoo observation
  {"observation": int8 6x7x2, "action_mask": int8 7} is rewritten (a PettingZoo
  `BaseWrapper`) to {"observations": float32 84, "action_mask": float32 7}, the layout
  that RLlib's example `ActionMaskingTorchRLModule` (a PPOTorchRLModule that adds
  log(mask) to the logits) expects; our actors flatten the board to float32 84 too.
  So no illegal moves are sampled. (Without masking connect_four's own
  TerminateIllegalWrapper would end the game on an illegal move with -1 for the mover.)
- parallel envs such as `envs.sumo.sumo_env`: `ParallelPettingZooEnv`; Box actions,
  RLlib's diagonal Gaussian with a state-independent log-std (`free_log_std`), like ours.

Network (`model.hidden`, `model.activation`): `DefaultModelConfig(fcnet_hiddens=hidden,
fcnet_activation=activation, vf_share_layers=True, head_fcnet_hiddens=[])`: one MLP
torso shared by linear policy and value heads, which is our `PolicyValueNet`. (RLlib's
PPO default is a separate value MLP, which doubles the network; `--separate-vf` runs
that instead.)

PPO settings that matter for speed, ours -> RLlib:
- one learner update = `algorithm.batch_chunks` x `actors.chunk_length` agent steps
  -> `train_batch_size_per_learner` (connect_four: 64 x 32 = 2048), counted in agent
  steps (`multi_agent(count_steps_by="agent_steps")`) because our chunks are per agent;
  `rollout_fragment_length="auto"` then samples batch / (runners x envs) agent steps
  per env and iteration: with 1 runner x 64 envs, 32 moves per connect_four env, and
  with 1 x 32, 32 env steps of both discs per sumo env, i.e. our chunk_length. (RLlib's
  agent-step counter behind this counts observations, see below: a connect_four batch
  holds ~5% fewer moves than 2048.)
- `algorithm.minibatches` -> `minibatch_size` = batch / minibatches (512);
- `algorithm.epochs` -> `num_epochs`;
- lr, gamma, clip, entropy_coef, value_coef, max_grad_norm -> lr, gamma, clip_param,
  entropy_coeff, vf_loss_coeff, grad_clip. Ours is PPO with V-trace targets (no GAE,
  no KL term): RLlib runs GAE with lambda_=1.0 and use_kl_loss=False.

How steps are counted. Our system counts every agent decision (every move of either
player) as one env step. RLlib's counters differ:
- `num_env_steps_sampled_lifetime`: calls to the MultiAgentEnv's `step()`. In a
  turn-based game through PettingZooEnv one call is one move (= our env step); in a
  parallel env one call is one move of *every* live agent (sumo: 2 of our steps).
- `num_agent_steps_sampled_lifetime` (per agent id): observations *returned* by
  `step()`, which is not quite decisions: in connect_four the last step of a game
  returns both players' final observations, so it over-counts one per game.
- `agent_steps_per_s` here (the comparable figure): actions actually taken, summed
  from the sampled episodes (`MultiAgentEpisode.agent_steps()`, i.e. the lengths of
  the per-agent episodes) by an `on_sample_end` callback on the env runners, logged
  as `num_actions_sampled_lifetime`. It equals env steps for connect_four and 2 x env
  steps for sumo (checked by the ratio printed on stderr). In a turn-based game a move
  is counted once the mover's next observation arrives, so the counter trails by at most
  one move per env: a constant that cancels in the measured difference.

Rates are taken between the end of a warm-up `train()` (Ray start-up, runner
creation and the first iteration excluded) and the end of the last iteration that
starts before `--seconds` have passed; they include the learner's time, as our
end-to-end figures do. Prints one JSON object on stdout and a readable line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo.utils import BaseWrapper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import JobConfig, load_config  # noqa: E402

POLICY = "main"
ACTIONS_LIFETIME = "num_actions_sampled_lifetime"


class FlatMaskedObservation(BaseWrapper):
    """AEC wrapper: {"observation", "action_mask"} -> float32 {"observations", "action_mask"},
    the observation flattened (what RLlib's ActionMaskingTorchRLModule reads)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._spaces: dict[str, gym.spaces.Dict] = {}
        for agent in env.possible_agents:
            space = env.observation_space(agent)
            obs_dim = int(np.prod(space["observation"].shape))
            n_actions = int(np.prod(space["action_mask"].shape))
            self._spaces[agent] = gym.spaces.Dict(
                {
                    "observations": gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32),
                    "action_mask": gym.spaces.Box(0.0, 1.0, (n_actions,), np.float32),
                }
            )

    def observation_space(self, agent: str) -> gym.spaces.Dict:
        return self._spaces[agent]

    def observe(self, agent: str) -> dict[str, np.ndarray] | None:
        raw = self.env.observe(agent)
        if raw is None:
            return None
        return {
            "observations": np.asarray(raw["observation"], np.float32).reshape(-1),
            "action_mask": np.asarray(raw["action_mask"], np.float32),
        }


def _has_mask(space: gym.Space) -> bool:
    return isinstance(space, gym.spaces.Dict) and {"observation", "action_mask"} <= set(
        space.spaces
    )


def make_env(env_config: Mapping[str, Any]) -> Any:
    """The RLlib MultiAgentEnv for {"name", "api", "kwargs"} (our `env` config section)."""
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv, PettingZooEnv

    name, api = str(env_config["name"]), str(env_config.get("api", "auto"))
    kwargs = dict(env_config.get("kwargs") or {})
    module_name, _, attr = name.partition(":")
    module = importlib.import_module(module_name)
    if attr:
        raise ValueError(f"{name}: give a module with env()/parallel_env(), not a callable")
    if api in ("auto", "aec") and hasattr(module, "env"):
        env = module.env(**kwargs)
        if _has_mask(env.observation_space(env.possible_agents[0])):
            env = FlatMaskedObservation(env)
        return PettingZooEnv(env)
    if api in ("auto", "parallel") and hasattr(module, "parallel_env"):
        par = module.parallel_env(**kwargs)
        space = par.observation_space(par.possible_agents[0])
        if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
            raise ValueError(f"{name}: parallel envs need flat Box observations, got {space}")
        return ParallelPettingZooEnv(par)
    raise ValueError(f"{name}: no {api} PettingZoo constructor")


def env_config_of(job: JobConfig) -> dict[str, Any]:
    return {"name": job.env.name, "api": job.env.api, "kwargs": dict(job.env.kwargs)}


def count_actions(*, metrics_logger: Any = None, samples: Any = None, **_: Any) -> None:
    """`on_sample_end` callback: actions taken in this sample() call (agent steps)."""
    if metrics_logger is None or not samples:
        return
    actions = sum(int(episode.agent_steps()) for episode in samples)
    metrics_logger.log_value(ACTIONS_LIFETIME, actions, reduce="lifetime_sum")


def build_config(
    job: JobConfig,
    num_env_runners: int | None = None,
    envs_per_runner: int | None = None,
    separate_vf: bool = False,
    env_name: str = "selfplay_rllib_env",
) -> Any:
    """RLlib PPOConfig mirroring `job` (see the module docstring for the mapping).

    Registers `make_env` under `env_name` (Tune's registry, which the runners read)."""
    from ray.cloudpickle import register_pickle_by_value
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    if __name__ != "__main__":
        # Remote runners cannot import this file by name (benchmarks/ is no package): ship
        # its code by value with the env creator and the callback.
        register_pickle_by_value(sys.modules[__name__])
    register_env(env_name, make_env)
    env_config = env_config_of(job)
    runners = job.actors.num_actors if num_env_runners is None else num_env_runners
    envs = job.actors.envs_per_actor if envs_per_runner is None else envs_per_runner
    algo = job.algorithm
    batch = algo.batch_chunks * job.actors.chunk_length
    probe = make_env(env_config)
    masked = any(
        isinstance(space, gym.spaces.Dict) and "action_mask" in space.spaces
        for space in probe.observation_space.spaces.values()
    )
    continuous = any(
        isinstance(space, gym.spaces.Box) for space in probe.action_space.spaces.values()
    )
    probe.close()
    model = DefaultModelConfig(
        fcnet_hiddens=list(job.model.hidden),
        fcnet_activation=job.model.activation,
        head_fcnet_hiddens=[],
        vf_share_layers=not separate_vf,
        free_log_std=continuous,
    )
    if job.model.kind != "mlp":
        logging.warning("model.kind %r: RLlib runs the MLP of model.hidden", job.model.kind)
    if masked:
        from ray.rllib.examples.rl_modules.classes.action_masking_rlm import (
            ActionMaskingTorchRLModule,
        )

        spec = RLModuleSpec(module_class=ActionMaskingTorchRLModule)
    else:
        spec = None
    config = (
        PPOConfig()
        .framework("torch")
        .environment(env=env_name, env_config=env_config)
        .env_runners(
            num_env_runners=runners,
            num_envs_per_env_runner=envs,
            num_cpus_per_env_runner=1,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0, num_gpus_per_learner=0)
        .multi_agent(
            policies={POLICY},
            policy_mapping_fn=lambda agent_id, episode, **kw: POLICY,
            count_steps_by="agent_steps",
        )
        .rl_module(model_config=model, **({"rl_module_spec": spec} if spec else {}))
        .training(
            train_batch_size_per_learner=batch,
            minibatch_size=max(1, batch // algo.minibatches),
            num_epochs=algo.epochs,
            lr=algo.lr,
            gamma=algo.gamma,
            lambda_=1.0,
            clip_param=algo.clip,
            entropy_coeff=algo.entropy_coef,
            vf_loss_coeff=algo.value_coef,
            grad_clip=algo.max_grad_norm,
            use_kl_loss=False,
        )
        .callbacks(on_sample_end=count_actions)
        .debugging(seed=algo.seed, log_level="WARN")
    )
    return config


def _counters(result: Mapping[str, Any]) -> dict[str, float]:
    runners = result.get("env_runners", {})
    agent = runners.get("num_agent_steps_sampled_lifetime", {})
    return {
        "env": float(runners.get("num_env_steps_sampled_lifetime", 0)),
        "agent": float(sum(agent.values()) if isinstance(agent, Mapping) else agent),
        "actions": float(runners.get(ACTIONS_LIFETIME, 0)),
    }


def run(
    job: JobConfig,
    seconds: float,
    num_env_runners: int | None = None,
    envs_per_runner: int | None = None,
    separate_vf: bool = False,
    warmup_iterations: int = 1,
) -> dict[str, Any]:
    """Starts a private local Ray, trains for `seconds` after warm-up, returns the rates."""
    import ray

    config = build_config(job, num_env_runners, envs_per_runner, separate_vf)
    runners = config.num_env_runners
    ray.init(
        address="local",
        num_cpus=max(os.cpu_count() or 1, runners + 1),
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=True,
    )
    try:
        algo = config.build_algo()
        try:
            for _ in range(max(1, warmup_iterations)):
                result = algo.train()
            before, start = _counters(result), time.perf_counter()
            iterations = 0
            while iterations == 0 or time.perf_counter() - start < seconds:
                result = algo.train()
                iterations += 1
            elapsed = time.perf_counter() - start
            after = _counters(result)
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    rate = {key: (after[key] - before[key]) / elapsed for key in after}
    return {
        "num_env_runners": runners,
        "envs_per_runner": config.num_envs_per_env_runner,
        "train_batch_size": config.train_batch_size_per_learner,
        "minibatch_size": config.minibatch_size,
        "num_epochs": config.num_epochs,
        "iterations": iterations,
        "seconds": round(elapsed, 2),
        "env_steps_per_s": round(rate["env"], 1),
        "agent_steps_per_s": round(rate["actions"], 1),
        "rllib_agent_steps_per_s": round(rate["agent"], 1),
        "env_steps": int(after["env"] - before["env"]),
        "agent_steps": int(after["actions"] - before["actions"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/connect_four.yaml")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured training time")
    parser.add_argument("--num-env-runners", type=int, default=None, help="actors.num_actors")
    parser.add_argument("--envs-per-runner", type=int, default=None, help="actors.envs_per_actor")
    parser.add_argument("--warmup-iterations", type=int, default=1)
    parser.add_argument("--separate-vf", action="store_true", help="RLlib's separate value MLP")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    job = load_config(args.config, args.overrides)
    figures = run(
        job,
        args.seconds,
        args.num_env_runners,
        args.envs_per_runner,
        args.separate_vf,
        args.warmup_iterations,
    )
    result = {
        "config": args.config,
        "env": job.env.name,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "hidden": list(job.model.hidden),
        "activation": job.model.activation,
        "vf_share_layers": not args.separate_vf,
        **figures,
    }
    ratio = figures["agent_steps"] / max(1, figures["env_steps"])
    print(
        f"RLlib PPO self-play {job.env.name}: {figures['num_env_runners']} runners x "
        f"{figures['envs_per_runner']} envs, MLP {list(job.model.hidden)}: "
        f"{figures['agent_steps_per_s']:,.0f} agent steps/s (actions; comparable to our env "
        f"steps/s), {figures['env_steps_per_s']:,.0f} RLlib env steps/s "
        f"({ratio:.2f} actions per env step), {figures['iterations']} iterations in "
        f"{figures['seconds']:.1f} s",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
