"""Bots (envs/bots.py): the tactical bot, a yardstick stronger than random for any
turn-based game, and the registry that makes any bot a league builtin and an opponent."""

import numpy as np
import torch

from actors.evaluation import play_games
from actors.players import BotPlayer, Lineup
from cluster.checks import check_job
from core.config import parse_config
from envs.bots import BOTS, Batch, register_bot, tactical_action
from envs.pettingzoo_adapter import Game, GameSpec, outcome_for


def test_clone_is_independent() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    game.reset(seed=0)
    agent = game.to_act()[0]
    twin = game.clone()
    twin.step({agent: 3})
    assert game.to_act() == [agent]  # the original did not move
    assert not np.array_equal(game.observe(agent)[0], twin.observe(agent)[0])


def test_tactical_bot_beats_random_at_connect_four() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    rng = np.random.default_rng(0)
    wins = 0
    for g in range(40):
        bot = game.spec.agents[g % 2]
        other = game.spec.agents[1 - g % 2]
        game.reset(seed=g)
        while not game.done:
            (agent,) = game.to_act()
            if agent == bot:
                action = tactical_action(game, agent, rng)
            else:
                action = int(rng.choice(np.flatnonzero(game.observe(agent)[1])))
            game.step({agent: action})
        wins += outcome_for(game.returns, bot, other) == "a_win"
    # DEVELOPERS.md measured ~94% for such a bot; random-vs-random is ~50%.
    assert wins >= 34


def test_tactical_bot_takes_a_win_and_blocks_one() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    game.reset(seed=0)
    first, second = game.spec.agents
    # first stacks column 0 three high while second plays column 6.
    for col_first, col_second in [(0, 6), (0, 6)]:
        game.step({first: col_first})
        game.step({second: col_second})
    game.step({first: 0})
    # second must block column 0 (first threatens four in a column).
    assert tactical_action(game, second, np.random.default_rng(1)) == 0
    game.step({second: 5})
    # now first can win in column 0 and must take it.
    assert tactical_action(game, first, np.random.default_rng(1)) == 0


class FirstLegalBot:
    """A bot defined only here: the lowest legal action. Registering it is all it takes
    to be a league builtin and an eval opponent (no change under actors/ or cluster/)."""

    name = "first_legal"

    def problem(self, env_name: str, spec: GameSpec) -> str | None:
        return None if not spec.continuous else "discrete actions only"

    def act(self, batch: Batch) -> np.ndarray:
        assert batch.mask is not None
        return batch.mask.argmax(axis=1)


def test_a_registered_bot_is_a_builtin_and_an_eval_opponent() -> None:
    if FirstLegalBot.name not in BOTS:  # registered once per test process
        register_bot(FirstLegalBot())
    config = parse_config(
        {
            "job": "c4",
            "env": {"name": "pettingzoo.classic.connect_four_v3"},
            "model": {"hidden": [8]},
            "league": {"builtins": ["random", "first_legal"]},
        }
    )
    check_job(config)  # a known bot that can play connect_four
    lineup = Lineup({}, torch.Generator())
    first_legal, random = lineup.player(("main", "first_legal")), lineup.player(("main", "random"))
    assert isinstance(first_legal, BotPlayer)
    # Stacking column 0 wins against random play most of the time.
    wins, draws, losses = play_games(config, first_legal, random, games=40, seed=0)
    assert wins + draws + losses == 40 and wins > 20
