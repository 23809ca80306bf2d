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
    finally:
        env.close()
