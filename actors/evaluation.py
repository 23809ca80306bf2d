"""`selfplay eval`: a trained policy against a bot (the random player, the tactical bot,
...: envs/bots.py) or a frozen snapshot.

Half the games are played from each seat (first/second player), so a result can't
hide a policy that only wins when it moves first. The policy acts greedily by
default (its most likely legal move), which is how a trained agent is deployed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actors.players import LEARNER, Batch, Lineup, Player
from actors.policies import acting_kind
from core.checkpoints import load_checkpoint
from core.codec import decode_weights, weights_spec
from core.config import JobConfig
from core.dynamics import DynamicsRanges, Randomization
from core.players import lineage_of, parse_snapshot_id
from core.spaces import PolicyShape
from envs.bots import bot_problem
from envs.goal import GoalVectorEnv, goal_task
from envs.pettingzoo_adapter import Game, GameSpec
from envs.randomization import randomized


@dataclass(frozen=True)
class EvalResult:
    games: int
    wins: int
    draws: int
    losses: int
    opponent: str
    policy_version: int

    def as_json(self) -> dict[str, float | int | str]:
        return {
            "games": self.games,
            "win_rate": self.wins / self.games,
            "draw_rate": self.draws / self.games,
            "loss_rate": self.losses / self.games,
            "wins": self.wins,
            "draws": self.draws,
            "losses": self.losses,
            "opponent": self.opponent,
            "policy_version": self.policy_version,
        }


class RunDirPolicies:
    """One lineage's networks from a run dir, as players (actors/players.py
    `PolicySource`): its latest checkpoint and its snapshot files, acting with the acting
    kind's reference arithmetic."""

    def __init__(self, run_dir: Path, config: JobConfig, spec: GameSpec, lineage: str) -> None:
        self.run_dir, self.config, self.lineage = run_dir, config, lineage
        self.kind = acting_kind(config.algorithm.acting)
        self.template = self.kind.build_net(config.model, spec.shape).eval()
        self._checkpoint: tuple[torch.nn.Module, int] | None = None

    def checkpoint(self) -> tuple[torch.nn.Module, int]:
        """The acting network of the lineage's latest checkpoint and its version."""
        if self._checkpoint is None:
            net = copy.deepcopy(self.template)
            path = self.run_dir / "checkpoints" / self.config.names().checkpoint_file(self.lineage)
            meta = load_checkpoint(path, {self.config.algorithm.acting_net: net})
            self._checkpoint = net.eval(), int(meta["counters"]["version"])
        return self._checkpoint

    def learner_policy(self, generator: torch.Generator) -> Player:
        return self.kind.player(self.checkpoint()[0], generator)

    def frozen_policy(self, player_id: str, generator: torch.Generator) -> Player:
        net = load_snapshot(self.run_dir, player_id, self.template)
        return self.kind.player(net, generator)


def load_snapshot(run_dir: Path, player_id: str, template: torch.nn.Module) -> torch.nn.Module:
    path = run_dir / "snapshots" / f"{player_id}.safetensors"
    if not path.exists():
        known = sorted(p.stem for p in (run_dir / "snapshots").glob("*.safetensors"))
        raise FileNotFoundError(f"no snapshot {player_id!r} in {run_dir} (have: {known})")
    tensors, _, _ = decode_weights(path.read_bytes(), weights_spec(template.state_dict()))
    net = copy.deepcopy(template)  # same architecture, weights replaced below
    net.load_state_dict(tensors)
    return net.eval()


def seats(agents: tuple[str, ...], game_index: int) -> tuple[str, str]:
    """(policy's agent, opponent's agent) of game `game_index`: seats alternate."""
    return (agents[0], agents[1]) if game_index % 2 == 0 else (agents[1], agents[0])


def choose_actions(
    game: Game,
    me: str | Collection[str],
    policy: Player,
    opponent: Player,
    rng: np.random.Generator,
    greedy: bool = True,
    states: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray | int]:
    """The actions of every agent that must move now: `me` (an agent, or a team's agents)
    plays `policy` (greedily unless `greedy` is False), everyone else the opponent (a
    network, which samples, or a bot). Shared by `play_games` and `selfplay replay`, so a
    replay with the same seed shows the games eval scored. `states`: recurrent policies'
    state per agent this episode (updated here; a new episode starts from an empty dict)."""
    mine = {me} if isinstance(me, str) else set(me)
    chosen: dict[str, np.ndarray | int] = {}
    for agent in game.to_act():
        obs, mask = game.observe(agent)
        spec = game.teams[game.team_of[agent]]
        ours = agent in mine
        masks = None if mask is None else mask[None]
        state = None if states is None or agent not in states else states[agent][None]
        batch = Batch(
            obs[None], masks, rng, spec, [game], [agent], greedy=greedy and ours, state=state
        )
        decision = (policy if ours else opponent).act(batch)
        action = decision.actions[0]
        if states is not None and decision.state is not None:
            states[agent] = decision.state[0]
        chosen[agent] = action if spec.continuous else int(action)
    return chosen


def play_games(
    config: JobConfig,
    policy: Player,
    opponent: Player,
    games: int,
    seed: int = 0,
    greedy: bool = True,
    team: str | None = None,
    dynamics: DynamicsRanges | None = None,
) -> tuple[int, int, int]:
    """(wins, draws, losses) of `policy` against `opponent`. Team games: `policy` plays
    every agent of `team`, the opponent the other team, and env.scoring_team decides who
    won. `dynamics`: ranges every game draws its physics from (None: nominal)."""
    env = config.env
    game = Game(env.name, env.api, env.kwargs, config.team_prefixes())
    if dynamics is not None:
        game.randomize(dynamics, seed)
    rng = np.random.default_rng(seed)
    wins = draws = losses = 0
    for g in range(games):
        game.reset(seed=int(rng.integers(2**31)))
        if team is None:
            me, other = seats(game.spec.agents, g)
            mine, theirs = (me,), (other,)
        else:
            mine = game.teams[team].agents
            theirs = tuple(a for a in game.agents if a not in mine)
        states: dict[str, np.ndarray] = {}  # recurrent players' memory, this game only
        while not game.done:
            game.step(choose_actions(game, mine, policy, opponent, rng, greedy, states))
        scoring = None
        if team is not None and env.scoring_team is not None:
            scoring = "a" if env.scoring_team == team else "b"
        outcome = game.team_outcome(mine, theirs, scoring)
        wins += outcome == "a_win"
        losses += outcome == "b_win"
        draws += outcome == "draw"
    return wins, draws, losses


def load_players(
    run_dir: Path,
    config: JobConfig,
    teams: Mapping[str, GameSpec],
    opponent: str,
    generator: torch.Generator,
    policy_id: str | None = None,
    team: str | None = None,
) -> tuple[Player, int, Player]:
    """(policy, its version, opponent) as `selfplay eval` and `selfplay replay` name them,
    through the seat dispatch the rollout workers use (actors/players.py `Lineup`) over
    the run dir's networks: `policy_id` None is the latest checkpoint, else a snapshot
    ("main@v100"); `opponent` is a bot ("random", "tactical", "charge", "still":
    envs/bots.py) or "snapshot:ID". Networks sample from `generator`. `teams`: the game's
    (Game.teams); team games name the policy's `team`, the opponent plays the other."""
    pools = {
        lineage: RunDirPolicies(run_dir, config, teams[learning.team], lineage)
        for lineage, learning in config.learners().items()
    }
    mine = team or config.league.learner_player
    theirs = next((t for t in teams if t != team), mine) if team is not None else mine
    _, version = pools[mine].checkpoint()  # the run must have one, whatever plays
    key = LEARNER
    if policy_id is not None:
        parsed = parse_snapshot_id(policy_id)
        if parsed is None:
            raise ValueError(f"--policy must be a snapshot id such as main@v100, got {policy_id!r}")
        key, version = policy_id, parsed[1]
    lineup = Lineup(pools, generator)
    policy = lineup.player((mine, key))
    if opponent.startswith("snapshot:"):
        snapshot = opponent.split(":", 1)[1]
        lineage = lineage_of(snapshot)
        if lineage not in pools:
            raise ValueError(f"--opponent {opponent}: {lineage!r} is no learner of this job")
        return policy, version, lineup.player((lineage, snapshot))
    problem = bot_problem(opponent, config.env.name, teams[theirs])
    if problem is None and opponent == "tactical" and team is not None:
        problem = "single-team games only"
    if problem is not None:
        raise ValueError(f"--opponent {opponent}: {problem} (or snapshot:ID)")
    return policy, version, lineup.player((theirs, opponent))


def evaluate(
    run_dir: Path,
    config: JobConfig,
    opponent: str,
    games: int,
    seed: int = 0,
    greedy: bool = True,
    policy_id: str | None = None,
    team: str | None = None,
    dynamics: DynamicsRanges | None = None,
) -> EvalResult:
    """`policy_id` None plays the latest checkpoint, else a snapshot ("main@v100").
    Team games need `team`: the policy plays that team, the opponent the other one."""
    teams = Game(config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()).teams
    generator = torch.Generator().manual_seed(seed)
    if config.env.teams and team not in teams:
        raise ValueError(f"this job has teams {sorted(teams)}: pass --team with one of them")
    if not config.env.teams and team is not None:
        raise ValueError("--team is for team games (env.teams); this job has none")
    players = load_players(run_dir, config, teams, opponent, generator, policy_id, team)
    policy, version, opp = players
    wins, draws, losses = play_games(config, policy, opp, games, seed, greedy, team, dynamics)
    return EvalResult(games, wins, draws, losses, opponent, version)


@dataclass(frozen=True)
class GoalEvalResult:
    episodes: int
    successes: int
    policy_version: int

    def as_json(self) -> dict[str, float | int]:
        return {
            "episodes": self.episodes,
            "success_rate": self.successes / self.episodes,
            "successes": self.successes,
            "policy_version": self.policy_version,
        }


def dynamics_sets(
    which: str, randomization: Randomization | None
) -> dict[str, DynamicsRanges | None]:
    """The dynamics an evaluation plays, by name: "nominal" (the env as built), "train"
    (the job's training ranges) or "heldout" (each named held-out set)."""
    if which == "nominal":
        return {"nominal": None}
    if randomization is None:
        raise ValueError(f"--dynamics {which}: this job's config has no env.randomization")
    if which == "train":
        return {"train": randomization.train}
    if which == "heldout":
        if not randomization.heldout:
            raise ValueError("--dynamics heldout: env.randomization.heldout names no sets")
        return dict(randomization.heldout)
    raise ValueError(f"--dynamics must be nominal, train or heldout, got {which!r}")


def goal_env_for_eval(
    config: JobConfig, episodes: int, seed: int, dynamics: DynamicsRanges | None
) -> GoalVectorEnv:
    """The goal task's vector env an evaluation plays (up to 64 games at once), its
    physics drawn from `dynamics` every episode (None: nominal)."""
    task = goal_task(config.env.name)
    if task is None:
        raise ValueError(f"{config.env.name} is no goal task")
    env = task.make(min(episodes, 64), seed=seed, **dict(config.env.kwargs))
    return env if dynamics is None else randomized(env, dynamics, seed)


def goal_successes(player: Player, env: GoalVectorEnv, episodes: int, seed: int) -> int:
    """How many of `episodes` greedy episodes of `player` on `env` end on their goal (a
    recurrent player's state carried per game, zeros at each episode's start)."""
    spec = GameSpec(
        ("agent",), env.obs_dim + env.goal_dim, env.num_actions, False, False, env.continuous
    )
    rng = np.random.default_rng(seed)
    obs = env.reset()
    done = successes = 0
    state = None
    while done < episodes:
        inputs = np.concatenate([obs.observation, obs.desired_goal], axis=1)
        decision = player.act(Batch(inputs, None, rng, spec, (), (), greedy=True, state=state))
        obs, _, terminated, truncated, info = env.step(decision.actions)
        state = decision.state
        if state is not None:
            state[terminated | truncated] = 0.0
        for g in np.flatnonzero(terminated | truncated):
            if done < episodes:
                done += 1
                successes += bool(info["is_success"][g])
    return successes


def evaluate_goal(
    run_dir: Path,
    config: JobConfig,
    episodes: int,
    seed: int = 0,
    policy_id: str | None = None,
    dynamics: DynamicsRanges | None = None,
) -> GoalEvalResult:
    """A goal job's policy (the latest checkpoint, else a snapshot) playing `episodes`
    greedy episodes of its task, with fresh goals: how many end on their goal. `dynamics`:
    ranges every episode draws its physics from (None: the nominal env)."""
    env = goal_env_for_eval(config, episodes, seed, dynamics)
    try:
        shape = PolicyShape(env.obs_dim, env.num_actions, env.continuous, env.goal_dim)
        spec = GameSpec(("agent",), shape.input_dim, env.num_actions, False, False, env.continuous)
        policies = RunDirPolicies(run_dir, config, spec, config.league.learner_player)
        net, version = policies.checkpoint()
        if policy_id is not None:
            parsed = parse_snapshot_id(policy_id)
            if parsed is None:
                raise ValueError(f"--policy must be a snapshot id, got {policy_id!r}")
            net, version = load_snapshot(run_dir, policy_id, net), parsed[1]
        player = policies.kind.player(net, torch.Generator().manual_seed(seed))
        return GoalEvalResult(episodes, goal_successes(player, env, episodes, seed), version)
    finally:
        env.close()


def goal_eval_doc(which: str, results: Mapping[str, GoalEvalResult]) -> dict[str, object]:
    """`selfplay eval --json` of a goal job: one set's result, with "dynamics" naming it;
    several (held-out) sets: their totals, and each set under "sets"."""
    if len(results) == 1 and which != "heldout":
        return {**next(iter(results.values())).as_json(), "dynamics": which}
    episodes = sum(r.episodes for r in results.values())
    successes = sum(r.successes for r in results.values())
    return {
        "episodes": episodes,
        "success_rate": successes / episodes,
        "successes": successes,
        "policy_version": next(iter(results.values())).policy_version,
        "dynamics": which,
        "sets": {name: r.as_json() for name, r in results.items()},
    }


def games_eval_doc(which: str, results: Mapping[str, EvalResult]) -> dict[str, object]:
    """`selfplay eval --json` of a two-seat job: one set's result with "dynamics" naming
    it; held-out sets: their totals, and each set under "sets"."""
    if len(results) == 1 and which != "heldout":
        return {**next(iter(results.values())).as_json(), "dynamics": which}
    first = next(iter(results.values()))
    total = EvalResult(
        sum(r.games for r in results.values()),
        sum(r.wins for r in results.values()),
        sum(r.draws for r in results.values()),
        sum(r.losses for r in results.values()),
        first.opponent,
        first.policy_version,
    )
    return {
        **total.as_json(),
        "dynamics": which,
        "sets": {name: r.as_json() for name, r in results.items()},
    }
