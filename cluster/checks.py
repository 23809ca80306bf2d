"""Checks of a job config that the config's own validation (core/config.py) cannot make:
names that refer to registries on the floors above it (the league's sampling rules, the
bots an env provides: envs/bots.py), and whether each bot can play the job's game. `selfplay run`,
`submit` and `config show` run them before anything starts."""

from __future__ import annotations

from core.config import ConfigError, JobConfig
from envs.goal import GoalTask, goal_task


def check_job(config: JobConfig) -> None:
    """Raises ConfigError with one line naming the key, if the job cannot start."""
    from envs.bots import bot_problem
    from envs.pettingzoo_adapter import EnvConfigError, Game
    from league.sampling import sampling_rule

    league = config.league
    for key, name in (
        ("league.opponent_sampling", league.opponent_sampling),
        ("league.builtin_sampling", league.builtin_sampling),
    ):
        if name is not None:
            try:
                sampling_rule(name)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
    env = config.env
    goal_fields = {"desired_goal", "achieved_goal"}
    task = goal_task(env.name)
    if task is not None:
        _check_goal_job(config, task)
        return
    if goal_fields <= config.algorithm.chunk_fields:
        raise ConfigError(
            f"algorithm.name: {config.algorithm.name} trains goal tasks (envs/goal); "
            f"{env.name} is none"
        )
    try:
        game = Game(env.name, env.api, env.kwargs, config.team_prefixes())
    except EnvConfigError as exc:
        raise ConfigError(str(exc)) from None
    try:
        for name in league.builtins:
            for spec in game.teams.values():
                problem = bot_problem(name, env.name, spec)
                if problem:
                    raise ConfigError(f"league.builtins: {problem}")
    finally:
        game.close()
    if env.randomization is not None:
        _check_batched_randomization(config)
    if config.model.lstm and config.model.kind != "mlp":
        raise ConfigError("model.lstm: recurrent nets have an MLP torso (model.kind: mlp)")


def _check_batched_randomization(config: JobConfig) -> None:
    """Two-seat games randomise their physics in the batched env (one model, many games)."""
    from actors.vector_rollout import vector_factory

    factory = vector_factory(config)
    if factory is None:
        raise ConfigError(
            f"env.randomization: needs a batched env ({config.env.name} has no vector_env, "
            "or actors.vector_env is false)"
        )
    vec = factory(1, seed=0, **dict(config.env.kwargs))
    _check_randomization(config, vec)


def _check_goal_job(config: JobConfig, task: GoalTask) -> None:
    """A goal job (HER): an algorithm that replays goals, one chunk per episode."""
    if not {"desired_goal", "achieved_goal"} <= config.algorithm.chunk_fields:
        raise ConfigError(
            f"algorithm.name: {config.env.name} is a goal task; {config.algorithm.name} does "
            "not learn from goals (use dqn)"
        )
    try:
        env = task.make(1, seed=0, **dict(config.env.kwargs))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"env.kwargs: {exc}") from None
    try:
        if config.actors.chunk_length != env.max_steps:
            raise ConfigError(
                f"actors.chunk_length: must be the task's episode length {env.max_steps} "
                "(one chunk per episode, for hindsight relabelling)"
            )
        discrete_only = {"epsilon_greedy_q"}
        if env.continuous == (config.algorithm.acting in discrete_only):
            kind = "continuous" if env.continuous else "discrete"
            raise ConfigError(
                f"algorithm.name: {config.env.name} has {kind} actions; "
                f"{config.algorithm.name} does not act on them"
            )
        _check_randomization(config, env)
        _check_recurrence(config, env.max_steps)
        randomization = config.env.randomization
        omniscient = getattr(config.algorithm, "omniscient_critic", False)
        if omniscient and (randomization is None or not randomization.train.ranges()):
            raise ConfigError(
                "algorithm.omniscient_critic: the critic reads the episode's physics, but "
                "env.randomization.train varies none"
            )
    finally:
        env.close()


def _check_recurrence(config: JobConfig, episode_length: int) -> None:
    """A recurrent policy (model.lstm) needs a learner that trains on sequences (SAC) whose
    sequences fit an episode and divide the batch."""
    if not config.model.lstm:
        return
    algorithm = config.algorithm
    length = getattr(algorithm, "sequence_length", None)
    if length is None:
        raise ConfigError(f"model.lstm: {algorithm.name} has no recurrent learner (use sac)")
    if length > episode_length:
        raise ConfigError(
            f"algorithm.sequence_length: {length} is longer than an episode ({episode_length})"
        )
    if algorithm.batch_size % length:  # type: ignore[attr-defined]
        raise ConfigError(
            f"algorithm.sequence_length: {length} must divide batch_size ({algorithm.batch_size})"  # type: ignore[attr-defined]
        )


def _check_randomization(config: JobConfig, env: object) -> None:
    """Every range of env.randomization (training and held-out) names a parameter this env
    can change."""
    settings = config.env.randomization
    if settings is None:
        return
    from envs.randomization import randomized

    sets = {"train": settings.train} | {f"heldout.{k}": v for k, v in settings.heldout.items()}
    for key, ranges in sets.items():
        try:
            randomized(env, ranges, seed=0)
        except (AttributeError, ValueError) as exc:
            raise ConfigError(f"env.randomization.{key}: {exc}") from None
