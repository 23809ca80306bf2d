"""Config validation: unknown keys and bad values are one-line errors naming the key."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from cluster.checks import check_job
from core.config import ConfigError, dump_config, load_config, parse_config

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "connect_four.yaml"


def test_shipped_config_loads_and_round_trips(tmp_path: Path) -> None:
    cfg = load_config(CONFIG)
    assert cfg.env.name == "pettingzoo.classic.connect_four_v3"
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.lrr: unknown key"):
        parse_config({"job": "x", "env": {"name": "m"}, "algorithm": {"lrr": 1}})


def test_bad_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"algorithm\.lr: Input should be greater than 0"):
        parse_config({"job": "x", "env": {"name": "m"}, "algorithm": {"lr": -1}})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"env: Field required"):
        parse_config({"job": "x"})


def test_overrides_are_validated_the_same_way() -> None:
    cfg = load_config(
        CONFIG, ["algorithm.lr=0.001", "actors.envs_per_actor=8", "model.hidden=[32, 32]"]
    )
    assert cfg.algorithm.lr == 0.001
    assert cfg.actors.envs_per_actor == 8
    assert cfg.model.hidden == (32, 32)
    with pytest.raises(ConfigError, match=r"actors\.envs_per_actor"):
        load_config(CONFIG, ["actors.envs_per_actor=zero"])
    with pytest.raises(ConfigError, match=r"actors\.nope: unknown key"):
        load_config(CONFIG, ["actors.nope=1"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(CONFIG, ["actors.envs_per_actor"])


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("job: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen() -> None:
    cfg = load_config(CONFIG)
    with pytest.raises(ValidationError):
        cfg.algorithm.lr = 1.0  # type: ignore[misc]


def test_league_builtins_and_sampling_are_validated() -> None:
    base = {"job": "j", "env": {"name": "x"}}
    cfg = parse_config({**base, "league": {"builtins": ["random", "charge"]}})
    assert cfg.league.builtins == ("random", "charge")
    with pytest.raises(ConfigError, match="league.*rating anchor"):
        parse_config({**base, "league": {"builtins": ["charge"]}})
    with pytest.raises(ConfigError, match="league.*invalid player name"):
        parse_config({**base, "league": {"builtins": ["random", "bad name"]}})
    # Names the registries above core know are checked before a job starts. (The charge
    # bot is registered by the sumo env's package, as it is wherever a sumo job runs.)
    import envs.sumo  # noqa: F401

    c4 = {"job": "j", "env": {"name": "pettingzoo.classic.connect_four_v3"}}
    check_job(parse_config({**c4, "league": {"builtins": ["random", "tactical"]}}))
    for league, needle in [
        ({"builtins": ["random", "chess_engine"]}, "league.builtins: unknown bot 'chess_engine'"),
        ({"builtins": ["random", "charge"]}, "league.builtins: the charge bot plays sumo"),
        ({"opponent_sampling": "elo"}, "league.opponent_sampling: unknown opponent sampling"),
        ({"builtin_sampling": "best"}, "league.builtin_sampling: unknown opponent sampling"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            check_job(parse_config({**c4, "league": league}))
    with pytest.raises(ConfigError, match="env.name: cannot import"):
        check_job(parse_config({"job": "j", "env": {"name": "no.such.env"}}))


def test_teams_are_validated() -> None:
    base = {"job": "j"}
    teams = {"predator": ["adversary_"], "prey": ["agent_"]}
    cfg = parse_config({**base, "env": {"name": "x", "teams": teams, "scoring_team": "prey"}})
    assert cfg.team_prefixes() == {"predator": ("adversary_",), "prey": ("agent_",)}
    assert cfg.stream_name("prey") == "j-prey"
    single = parse_config({**base, "env": {"name": "x"}})
    assert single.team_prefixes() == {"main": ("",)} and single.stream_name("main") == "j"
    for env, msg in [
        ({"teams": {"a": ["x"]}}, "exactly two teams"),
        ({"teams": {"a b": ["x"], "c": ["y"]}}, "bad team name"),
        ({"teams": {"a": [], "c": ["y"]}}, "at least one"),
        ({"scoring_team": "a"}, "not one of env.teams"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            parse_config({**base, "env": {"name": "x", **env}})


@pytest.mark.parametrize(
    "name", ["her_bitflip", "her_fetch_reach", "her_fetch_push", "her_fetch_pick_and_place"]
)
def test_goal_configs_load_and_pass_the_start_checks(name: str, tmp_path: Path) -> None:
    path = CONFIG.parent / f"{name}.yaml"
    cfg = load_config(path)
    check_job(cfg)  # registries, episode-long chunks, actions the algorithm can take
    again = tmp_path / "again.yaml"
    again.write_text(dump_config(cfg))
    assert load_config(again) == cfg
    td3 = load_config(path, ["algorithm.name=td3"]) if cfg.algorithm.name == "sac" else None
    if td3 is not None:
        check_job(td3)
    else:
        bits = {"job": "j", "env": {"name": "envs.goal.bitflip", "kwargs": {"n_bits": 4}},
                "algorithm": {"name": "sac"}, "actors": {"chunk_length": 4}}  # fmt: skip
        with pytest.raises(ConfigError, match="has discrete actions; sac does not act"):
            check_job(parse_config(bits))
