"""The PettingZoo adapter runs turn-based (AEC) and parallel games through one interface."""

import sys
import types

import numpy as np
import pytest
from pettingzoo.classic import connect_four_v3
from pettingzoo.utils.wrappers import BaseWrapper

from envs.pettingzoo_adapter import EnvConfigError, Game, outcome_for


def play_random(game: Game, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    game.reset(seed=seed)
    steps = 0
    while not game.done:
        actions = {}
        for agent in game.to_act():
            obs, mask = game.observe(agent)
            assert obs.dtype == np.float32 and obs.shape == (game.spec.obs_dim,)
            legal = np.flatnonzero(mask) if mask is not None else np.arange(game.spec.num_actions)
            actions[agent] = int(rng.choice(legal))
        game.step(actions)
        steps += 1
        assert steps < 10_000
    return game.returns


def test_connect_four_is_turn_based_with_masks() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    assert game.spec.turn_based and game.spec.has_mask
    assert game.spec.obs_dim == 84 and game.spec.num_actions == 7
    outcomes = set()
    for seed in range(20):
        returns = play_random(game, seed)
        a, b = game.spec.agents
        assert returns[a] == -returns[b]
        outcomes.add(outcome_for(returns, a, b))
    assert "a_win" in outcomes and "b_win" in outcomes


def test_one_agent_acts_at_a_time_in_aec() -> None:
    game = Game("pettingzoo.classic.tictactoe_v3")
    game.reset(seed=0)
    assert len(game.to_act()) == 1
    first = game.to_act()[0]
    obs, mask = game.observe(first)
    game.step({first: int(np.flatnonzero(mask)[0])})
    assert game.to_act() != [first]


def _trace(game: Game, seed: int) -> list[tuple]:
    """Every observation, mask and reward of a random game (moves drawn from the masks)."""
    rng = np.random.default_rng(seed)
    game.reset(seed=seed)
    trace = []
    while not game.done:
        agent = game.to_act()[0]
        obs, mask = game.observe(agent)
        move = int(rng.choice(np.flatnonzero(mask)))
        rewards = game.step({agent: move})
        trace.append((agent, obs.tobytes(), mask.tobytes(), move, sorted(rewards.items())))
    return trace


@pytest.mark.parametrize("name", ["connect_four_v3", "tictactoe_v3"])
def test_bare_env_moves_play_exactly_like_the_wrapped_env(name: str) -> None:
    fast = Game(f"pettingzoo.classic.{name}")
    assert fast._bare_moves  # PettingZoo wraps classic games in policing wrappers only
    full = Game(f"pettingzoo.classic.{name}")
    full._bare_moves = False  # every move and observation through the wrappers
    for seed in range(10):
        assert _trace(fast, seed) == _trace(full, seed)
        assert fast.returns == full.returns and fast.done and full.done


def test_an_illegal_move_is_still_judged_by_the_wrappers() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    game.reset(seed=0)
    for _ in range(6):  # fill column 0 (the players alternate in it)
        agent = game.to_act()[0]
        game.observe(agent)
        game.step({agent: 0})
    mover = game.to_act()[0]
    _, mask = game.observe(mover)
    assert mask[0] == 0
    rewards = game.step({mover: 0})  # TerminateIllegalWrapper: the mover loses
    assert game.done and rewards[mover] == -1.0


def test_a_mask_from_before_a_move_is_never_trusted() -> None:
    """A mask observed before later moves must not let a now-illegal move through to the
    bare env: column 0 fills up after the mover last observed it."""
    game = Game("pettingzoo.classic.connect_four_v3")
    game.reset(seed=0)
    first = game.to_act()[0]
    for _ in range(5):  # column 0 to 5 of 6, each mover observing first
        agent = game.to_act()[0]
        _, mask = game.observe(agent)
        assert mask[0] == 1
        game.step({agent: 0})
    second = game.to_act()[0]
    game.observe(second)
    game.step({second: 0})  # column 0 full
    assert game.to_act() == [first]  # its last observation showed column 0 open
    rewards = game.step({first: 0})  # not observed since: judged by the wrappers
    assert game.done and rewards[first] == -1.0


def test_other_wrappers_keep_every_move_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    class Recording(BaseWrapper):  # may change what a move does: not bypassed
        pass

    module = types.ModuleType("wrapped_connect_four")
    module.env = lambda: Recording(connect_four_v3.env())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wrapped_connect_four", module)
    assert not Game("wrapped_connect_four")._bare_moves


def test_parallel_api_game() -> None:
    game = Game("pettingzoo.classic.rps_v2", api="parallel")
    assert not game.spec.turn_based
    game.reset(seed=0)
    assert sorted(game.to_act()) == sorted(game.spec.agents)
    returns = play_random(game, 1)
    assert set(returns) == set(game.spec.agents)


def test_same_seed_same_game() -> None:
    game = Game("pettingzoo.classic.connect_four_v3")
    assert play_random(game, 7) == play_random(game, 7)


def test_bad_env_names_are_clear() -> None:
    with pytest.raises(EnvConfigError, match="cannot import"):
        Game("pettingzoo.classic.no_such_game_v0")
    with pytest.raises(EnvConfigError, match="has no 'nope'"):
        Game("pettingzoo.classic.connect_four_v3:nope")
    with pytest.raises(EnvConfigError, match="env.kwargs"):
        Game("pettingzoo.classic.connect_four_v3", kwargs={"bogus": 1})
    # A known keyword with a value the env refuses (a sumo shaping term misspelt).
    with pytest.raises(EnvConfigError, match=r"env.kwargs: unknown shaping terms \['approch'\]"):
        Game("envs.sumo.sumo_env", "parallel", kwargs={"shaping": {"approch": 1.0}})


def test_teams_split_agents_with_different_spaces() -> None:
    name = "mpe2.simple_tag_v3"
    with pytest.raises(EnvConfigError, match="env.teams"):
        Game(name, "parallel")  # predators see 16 numbers, the prey 14: one policy can't
    with pytest.raises(EnvConfigError, match="'agent_0' .* matches no team"):
        Game(name, "parallel", teams={"predator": ["adversary_"], "ghost": ["zzz"]})
    game = Game(name, "parallel", teams={"predator": ["adversary_"], "prey": ["agent_"]})
    assert game.teams["predator"].agents == ("adversary_0", "adversary_1", "adversary_2")
    assert (game.teams["prey"].obs_dim, game.teams["prey"].num_actions) == (14, 5)
    game.reset(seed=0)
    while not game.done:
        game.step({a: 0 for a in game.to_act()})
    predators, prey = game.teams["predator"].agents, game.teams["prey"].agents
    # Nobody moved, so nobody was caught: the scoring predators lose.
    assert game.team_outcome(predators, prey, scoring="a") == "b_win"
