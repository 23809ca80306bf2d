"""`selfplay eval`: a trained policy against the random player, the scripted tactical
bot, or a frozen snapshot.

Half the games are played from each seat (first/second player), so a result can't
hide a policy that only wins when it moves first. The policy acts greedily by
default (its most likely legal move), which is how a trained agent is deployed.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from actors.policies import BUILTIN_RANDOM
from actors.scripted import tactical_action
from cluster.codec import decode_weights, weights_spec
from cluster.config import JobConfig
from cluster.nets import PolicyValueNet, act, build_net, random_legal_actions
from envs.pettingzoo_adapter import Game, GameSpec
from envs.sumo.scripted import charge_action
from learner.checkpoint import CHECKPOINT_NAME, load_checkpoint

TACTICAL = "tactical"
CHARGE = "charge"  # sumo discs only: full force at the opponent


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


def load_policy(
    run_dir: Path, config: JobConfig, obs_dim: int, num_actions: int, continuous: bool = False
) -> tuple[PolicyValueNet, int]:
    net = build_net(config.model, obs_dim, num_actions, continuous)
    meta = load_checkpoint(run_dir / "checkpoints" / CHECKPOINT_NAME, net)
    return net.eval(), int(meta["counters"]["version"])


def load_snapshot(run_dir: Path, player_id: str, template: PolicyValueNet) -> PolicyValueNet:
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
    me: str,
    policy: PolicyValueNet,
    opponent: PolicyValueNet | str,
    rng: np.random.Generator,
    gen: torch.Generator,
    greedy: bool = True,
) -> dict[str, np.ndarray | int]:
    """The actions of every agent that must move now: `me` plays `policy`, everyone else
    the opponent (a net, which samples, or a scripted "random" / "tactical" / "charge").
    Shared by `play_games` and `selfplay replay`, so a replay with the same seed shows the
    games eval scored."""
    chosen: dict[str, np.ndarray | int] = {}
    for agent in game.to_act():
        obs, mask = game.observe(agent)
        mask_b = None if mask is None else mask[None]
        if agent == me:
            action = act(policy, obs[None], mask_b, gen, greedy=greedy)[0][0]
        elif opponent == BUILTIN_RANDOM:
            action = random_legal_actions(
                mask_b, game.spec.num_actions, rng, 1, game.spec.continuous
            )[0]
        elif opponent == TACTICAL:
            action = tactical_action(game, agent, rng)
        elif opponent == CHARGE:
            action = charge_action(obs)
        else:
            assert isinstance(opponent, PolicyValueNet)
            action = act(opponent, obs[None], mask_b, gen)[0][0]
        chosen[agent] = action if game.spec.continuous else int(action)
    return chosen


def play_games(
    config: JobConfig,
    policy: PolicyValueNet,
    opponent: PolicyValueNet | str,
    games: int,
    seed: int = 0,
    greedy: bool = True,
) -> tuple[int, int, int]:
    """(wins, draws, losses) of `policy` against a net or a scripted "random" /
    "tactical" player."""
    env = config.env
    game = Game(env.name, env.api, env.kwargs)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    wins = draws = losses = 0
    for g in range(games):
        me, other = seats(game.spec.agents, g)
        game.reset(seed=int(rng.integers(2**31)))
        while not game.done:
            game.step(choose_actions(game, me, policy, opponent, rng, gen, greedy))
        outcome = game.outcome(me, other)
        wins += outcome == "a_win"
        losses += outcome == "b_win"
        draws += outcome == "draw"
    return wins, draws, losses


def load_players(
    run_dir: Path,
    config: JobConfig,
    spec: GameSpec,
    opponent: str,
    policy_id: str | None = None,
) -> tuple[PolicyValueNet, int, PolicyValueNet | str]:
    """(policy, its version, opponent) as `selfplay eval` and `selfplay replay` name them:
    `policy_id` None is the latest checkpoint, else a snapshot ("main@v100"); `opponent`
    is "random", "tactical", "charge" or "snapshot:ID" (a net)."""
    policy, version = load_policy(run_dir, config, spec.obs_dim, spec.num_actions, spec.continuous)
    if policy_id is not None:
        policy = load_snapshot(run_dir, policy_id, policy)
        version = int(policy_id.rsplit("@v", 1)[-1])
    if opponent == CHARGE and not (
        config.env.name.startswith("envs.sumo") and spec.continuous and spec.num_actions == 2
    ):
        raise ValueError("--opponent charge plays sumo with the disc body only")
    if opponent in (BUILTIN_RANDOM, TACTICAL, CHARGE):
        return policy, version, opponent
    if opponent.startswith("snapshot:"):
        return policy, version, load_snapshot(run_dir, opponent.split(":", 1)[1], policy)
    raise ValueError(
        f"--opponent must be 'random', 'tactical', 'charge' or 'snapshot:ID', got {opponent!r}"
    )


def evaluate(
    run_dir: Path,
    config: JobConfig,
    opponent: str,
    games: int,
    seed: int = 0,
    greedy: bool = True,
    policy_id: str | None = None,
) -> EvalResult:
    """`policy_id` None plays the latest checkpoint, else a snapshot ("main@v100")."""
    spec = Game(config.env.name, config.env.api, config.env.kwargs).spec
    policy, version, opp = load_players(run_dir, config, spec, opponent, policy_id)
    wins, draws, losses = play_games(config, policy, opp, games, seed, greedy)
    return EvalResult(games, wins, draws, losses, opponent, version)
