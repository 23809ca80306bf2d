"""`selfplay eval`: a trained policy against a bot (the random player, the tactical bot,
...: envs/bots.py) or a frozen snapshot.

Half the games are played from each seat (first/second player), so a result can't
hide a policy that only wins when it moves first. The policy acts greedily by
default (its most likely legal move), which is how a trained agent is deployed.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actors.players import Batch, BotPlayer, Player
from actors.policies import ActingKind, acting_kind
from core.checkpoints import load_checkpoint
from core.codec import decode_weights, weights_spec
from core.config import JobConfig
from core.players import parse_snapshot_id
from envs.bots import bot_problem, get_bot
from envs.pettingzoo_adapter import Game, GameSpec


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


def _acting(config: JobConfig) -> ActingKind:
    return acting_kind(config.algorithm.acting)


def load_policy(
    run_dir: Path, config: JobConfig, spec: GameSpec, lineage: str | None = None
) -> tuple[torch.nn.Module, int]:
    """The acting network of the latest checkpoint of `lineage` (a team; default the job's
    only learner) and its version."""
    net = _acting(config).build_net(config.model, spec.shape)
    name = config.names().checkpoint_file(lineage or config.league.learner_player)
    meta = load_checkpoint(run_dir / "checkpoints" / name, {config.algorithm.acting_net: net})
    return net.eval(), int(meta["counters"]["version"])


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
) -> dict[str, np.ndarray | int]:
    """The actions of every agent that must move now: `me` (an agent, or a team's agents)
    plays `policy` (greedily unless `greedy` is False), everyone else the opponent (a
    network, which samples, or a bot). Shared by `play_games` and `selfplay replay`, so a
    replay with the same seed shows the games eval scored."""
    mine = {me} if isinstance(me, str) else set(me)
    chosen: dict[str, np.ndarray | int] = {}
    for agent in game.to_act():
        obs, mask = game.observe(agent)
        spec = game.teams[game.team_of[agent]]
        ours = agent in mine
        masks = None if mask is None else mask[None]
        batch = Batch(obs[None], masks, rng, spec, [game], [agent], greedy=greedy and ours)
        action = (policy if ours else opponent).act(batch).actions[0]
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
) -> tuple[int, int, int]:
    """(wins, draws, losses) of `policy` against `opponent`. Team games: `policy` plays
    every agent of `team`, the opponent the other team, and env.scoring_team decides who
    won."""
    env = config.env
    game = Game(env.name, env.api, env.kwargs, config.team_prefixes())
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
        while not game.done:
            game.step(choose_actions(game, mine, policy, opponent, rng, greedy))
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
    spec: GameSpec,
    opponent: str,
    generator: torch.Generator,
    policy_id: str | None = None,
    team: str | None = None,
    opponent_spec: GameSpec | None = None,
) -> tuple[Player, int, Player]:
    """(policy, its version, opponent) as `selfplay eval` and `selfplay replay` name them:
    `policy_id` None is the latest checkpoint, else a snapshot ("main@v100"); `opponent`
    is a bot ("random", "tactical", "charge", "still": envs/bots.py) or "snapshot:ID".
    Networks act with the acting kind's reference arithmetic, sampling from `generator`.
    Team games: `spec` and `team` are the policy's team, `opponent_spec` the other's."""
    kind = _acting(config)
    net, version = load_policy(run_dir, config, spec, team)
    if policy_id is not None:
        net = load_snapshot(run_dir, policy_id, net)
        parsed = parse_snapshot_id(policy_id)
        if parsed is None:
            raise ValueError(f"--policy must be a snapshot id such as main@v100, got {policy_id!r}")
        version = parsed[1]
    policy = kind.player(net, generator)
    if opponent.startswith("snapshot:"):
        template = net
        if opponent_spec is not None:
            template = kind.build_net(config.model, opponent_spec.shape)
        snapshot = load_snapshot(run_dir, opponent.split(":", 1)[1], template)
        return policy, version, kind.player(snapshot, generator)
    problem = bot_problem(opponent, config.env.name, opponent_spec or spec)
    if problem is None and opponent == "tactical" and team is not None:
        problem = "single-team games only"
    if problem is not None:
        raise ValueError(f"--opponent {opponent}: {problem} (or snapshot:ID)")
    return policy, version, BotPlayer(get_bot(opponent))


def evaluate(
    run_dir: Path,
    config: JobConfig,
    opponent: str,
    games: int,
    seed: int = 0,
    greedy: bool = True,
    policy_id: str | None = None,
    team: str | None = None,
) -> EvalResult:
    """`policy_id` None plays the latest checkpoint, else a snapshot ("main@v100").
    Team games need `team`: the policy plays that team, the opponent the other one."""
    teams = Game(config.env.name, config.env.api, config.env.kwargs, config.team_prefixes()).teams
    generator = torch.Generator().manual_seed(seed)
    if config.env.teams:
        if team not in teams:
            raise ValueError(f"this job has teams {sorted(teams)}: pass --team with one of them")
        other = next(t for t in teams if t != team)
        policy, version, opp = load_players(
            run_dir, config, teams[team], opponent, generator, policy_id, team, teams[other]
        )
    else:
        if team is not None:
            raise ValueError("--team is for team games (env.teams); this job has none")
        spec = next(iter(teams.values()))
        policy, version, opp = load_players(run_dir, config, spec, opponent, generator, policy_id)
    wins, draws, losses = play_games(config, policy, opp, games, seed, greedy, team)
    return EvalResult(games, wins, draws, losses, opponent, version)
