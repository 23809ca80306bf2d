"""Checks of a job config that the config's own validation (core/config.py) cannot make:
names that refer to registries on the floors above it (the league's sampling rules, the
bots an env provides: envs/bots.py), and whether each bot can play the job's game. `selfplay run`,
`submit` and `config show` run them before anything starts."""

from __future__ import annotations

from core.config import ConfigError, JobConfig


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
