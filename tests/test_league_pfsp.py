"""Prioritized fictitious self-play and cross-team matchmaking, through a real league
server: results go in over gRPC, sampling frequencies come out and must match the
formulas within sampling error."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from core.config import LeagueSettings
from league.client import LeagueClient, LeagueError
from league.payoff import Payoff
from league.server import LeagueServer

TOKEN = "pfsp-token"
N = 6000


def _serve(tmp_path: Path, **settings: object) -> LeagueServer:
    server = LeagueServer(
        tmp_path / "league.db", token=TOKEN, settings=LeagueSettings(seed=3, **settings)
    )
    server.start()
    return server


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _report_record(client: LeagueClient, a: str, b: str, wins: int, losses: int) -> None:
    for i in range(wins + losses):
        outcome = "a_win" if i < wins else "b_win"
        client.report_result(f"{a}-{b}-{i}".replace("@", "_"), a, b, outcome)


# AlphaStar's PFSP weights of an opponent beaten with probability x (exponent 2).
FORMULA = {
    "pfsp_hard": lambda x: (1 - x) ** 2,
    "pfsp_var": lambda x: x * (1 - x),
    "uniform": lambda x: 1.0,
}


@pytest.mark.parametrize("sampling", sorted(FORMULA))
def test_pfsp_frequencies_match_the_formula(tmp_path: Path, sampling: str) -> None:
    server = _serve(tmp_path, self_play_fraction=0.0, opponent_sampling=sampling, payoff_decay=1.0)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            client.register_player("main")
            for v in (1, 2, 3):
                client.register_snapshot("main", v)
            # main's record: 9-1 vs random, 6-4 vs v1, 3-7 vs v2, nothing vs v3.
            records = {"random": (9, 1), "main@v1": (6, 4), "main@v2": (3, 7), "main@v3": (0, 0)}
            for opponent, (w, lost) in records.items():
                _report_record(client, "main", opponent, w, lost)
            # payoff prior: one virtual draw -> (wins + 0.5) / (games + 1)
            rates = {o: (w + 0.5) / (w + lost + 1) for o, (w, lost) in records.items()}
            weights = {o: FORMULA[sampling](x) for o, x in rates.items()}
            total = sum(weights.values())
            counts = Counter(client.sample_opponent("main").player_b for _ in range(N))
    finally:
        server.stop(0)
    assert set(counts) <= set(records)
    for opponent, weight in weights.items():
        p = weight / total
        sd = math.sqrt(p * (1 - p) / N)
        assert abs(counts[opponent] / N - p) < 4.5 * sd + 1e-9, (opponent, counts, p)


def test_payoff_decays_old_games_and_survives_a_restart(tmp_path: Path) -> None:
    payoff = Payoff(decay=0.5)
    payoff.add("a", "b", "b_win")
    payoff.add("a", "b", "a_win")
    # decayed: wins 1, games 1.5; prior adds one virtual draw
    assert payoff.win_rate("a", "b") == pytest.approx((1.0 + 0.5) / (1.5 + 1.0))
    assert payoff.win_rate("b", "a") == pytest.approx((0.5 + 0.5) / (1.5 + 1.0))
    assert payoff.win_rate("a", "nobody") == 0.5
    payoff.add("a", "a", "a_win")  # latest self: ignored
    assert payoff.games("a", "a") == 0.0

    settings = {"self_play_fraction": 0.0, "opponent_sampling": "pfsp_hard"}
    server = _serve(tmp_path, **settings)
    with LeagueClient(server.address, TOKEN) as client:
        client.register_player("main")
        client.register_snapshot("main", 1)
        _report_record(client, "main", "random", 20, 0)  # random is beaten: weight ~0
        _report_record(client, "main", "main@v1", 0, 20)
    server.stop(0)
    server = _serve(tmp_path, **settings)  # the win rates come back from the stored results
    try:
        with LeagueClient(server.address, TOKEN) as client:
            counts = Counter(client.sample_opponent("main").player_b for _ in range(400))
    finally:
        server.stop(0)
    # weights (1 - 0.5/21)^2 vs (1 - 20.5/21)^2 = 0.953 vs 0.00057
    assert counts["main@v1"] >= 395, counts


@pytest.mark.parametrize("draw_score", [0.5, 0.0])
def test_draw_score_sets_what_pfsp_makes_of_draws(tmp_path: Path, draw_score: float) -> None:
    """main beats v1 half the time and draws the rest; it beats random 15-5. At draw_score
    1/2 v1 looks easier than random (PFSP favours random); at 0, where a draw pays like a
    loss, v1 is the harder one."""
    settings = {"self_play_fraction": 0.0, "opponent_sampling": "pfsp_hard", "payoff_decay": 1.0}
    server = _serve(tmp_path, draw_score=draw_score, **settings)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            client.register_player("main")
            client.register_snapshot("main", 1)
            _report_record(client, "main", "random", 15, 5)
            for i in range(20):
                outcome = "a_win" if i < 10 else "draw"
                client.report_result(f"main-v1-{i}", "main", "main@v1", outcome)
            payoff = {(e.player, e.opponent): e for e in client.payoff().entries}
            counts = Counter(client.sample_opponent("main").player_b for _ in range(2000))
    finally:
        server.stop(0)
    v1 = payoff[("main", "main@v1")]
    assert (v1.wins, v1.draws, v1.losses) == (10, 10, 0)
    rate_v1 = (10 + 10 * draw_score + 0.5) / 21
    assert v1.win_rate == pytest.approx(rate_v1)
    # v1's side: 10 losses and the same 10 draws, each draw_score too (no win for either)
    assert payoff[("main@v1", "main")].win_rate == pytest.approx((10 * draw_score + 0.5) / 21)
    w_v1, w_random = (1 - rate_v1) ** 2, (1 - 15.5 / 21) ** 2
    p = w_v1 / (w_v1 + w_random)
    assert abs(counts["main@v1"] / 2000 - p) < 4.5 * math.sqrt(p * (1 - p) / 2000), (counts, p)
    assert (counts["main@v1"] > counts["random"]) == (draw_score == 0.0)


def test_payoff_rejects_a_draw_score_outside_0_1() -> None:
    with pytest.raises(ValueError, match="draw_score"):
        Payoff(draw_score=1.5)
    with pytest.raises(ValueError, match="draw_score"):
        LeagueSettings(draw_score=-0.1)


def test_teams_draw_opponents_from_the_other_lineage(tmp_path: Path) -> None:
    server = _serve(tmp_path, self_play_fraction=0.5)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            for team in ("predator", "prey"):
                client.register_player(team)
                client.register_snapshot(team, 1)
            counts = Counter(
                client.sample_opponent("predator", opponent_lineage="prey").player_b
                for _ in range(1000)
            )
            assert set(counts) == {"prey", "prey@v1", "random"}, counts
            assert abs(counts["prey"] / 1000 - 0.5) < 0.07
            for _ in range(50):
                m = client.sample_eval_match("predator", "prey")
                assert m.player_a in ("predator@v1", "random"), m
                assert m.player_b in ("prey@v1", "random") and m.player_b != m.player_a, m
            with pytest.raises(LeagueError) as err:
                client.sample_opponent("predator", opponent_lineage="ghost")
            assert err.value.code == "NOT_FOUND"
            with pytest.raises(LeagueError) as err:
                client.sample_eval_match("random", "prey")
            assert err.value.code == "INVALID_ARGUMENT"
    finally:
        server.stop(0)


def test_builtin_fraction_is_a_floor_for_builtins(tmp_path: Path) -> None:
    """30% self-play, 40% builtins alone, 30% PFSP-uniform over builtins and snapshots:
    with 1 builtin among 9 frozen players it gets 0.4 + 0.3/9 of all games."""
    server = _serve(tmp_path, self_play_fraction=0.3, builtin_fraction=0.4)
    try:
        with LeagueClient(server.address, TOKEN) as client:
            client.register_player("main")
            for v in range(1, 9):
                client.register_snapshot("main", v)
            counts = Counter(client.sample_opponent("main").player_b for _ in range(N))
    finally:
        server.stop(0)
    for opponent, p in (("main", 0.3), ("random", 0.4 + 0.3 / 9), ("main@v1", 0.3 / 9)):
        sd = math.sqrt(p * (1 - p) / N)
        assert abs(counts[opponent] / N - p) < 4 * sd, (opponent, counts)


def test_builtin_sampling_overrides_pfsp_among_builtins(tmp_path: Path) -> None:
    """All games go to builtins; the learner beats random 20-0 and loses to charge 0-20.
    pfsp_hard alone would nearly starve random; builtin_sampling "uniform" splits evenly."""
    shares = {}
    for name, builtin_sampling in (("pfsp", None), ("uniform", "uniform")):
        server = _serve(
            _mkdir(tmp_path / name),
            self_play_fraction=0.0,
            builtin_fraction=1.0,
            builtins=("random", "charge"),
            opponent_sampling="pfsp_hard",
            builtin_sampling=builtin_sampling,
        )
        try:
            with LeagueClient(server.address, TOKEN) as client:
                client.register_player("main")
                _report_record(client, "main", "random", 20, 0)
                _report_record(client, "main", "charge", 0, 20)
                drawn = Counter(client.sample_opponent("main").player_b for _ in range(N))
        finally:
            server.stop(0)
        shares[name] = drawn["random"] / N
    # pfsp_hard: weights (1 - x)^2 with x = (score + 0.5) / (games + 1) under decay 0.99.
    decayed = sum(0.99**k for k in range(20))
    x_random, x_charge = (decayed + 0.5) / (decayed + 1), 0.5 / (decayed + 1)
    w_random, w_charge = (1 - x_random) ** 2, (1 - x_charge) ** 2
    for share, p in ((shares["pfsp"], w_random / (w_random + w_charge)), (shares["uniform"], 0.5)):
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / N), (shares, p)


def test_unknown_sampling_rules_are_refused_before_the_league_starts(tmp_path: Path) -> None:
    for settings in (
        LeagueSettings(builtin_sampling="best"),
        LeagueSettings(opponent_sampling="elo"),
    ):
        with pytest.raises(ValueError, match="unknown opponent sampling"):
            LeagueServer(tmp_path / "league.db", token=TOKEN, settings=settings)
    assert not (tmp_path / "league.db").exists()


def test_builtin_sampling_five_alone_keeps_quality_scores(tmp_path: Path) -> None:
    """builtin_sampling "five" with another opponent_sampling used to fall back to uniform
    without a word: the service kept quality scores only for opponent_sampling "five"."""
    server = _serve(
        tmp_path, self_play_fraction=0.0, builtin_fraction=1.0, builtin_sampling="five",
        builtins=("random", "charge"),
    )  # fmt: skip
    try:
        with LeagueClient(server.address, TOKEN) as client:
            client.register_player("main")
            # main keeps beating random: its quality drops, so charge is drawn more often.
            _report_record(client, "main", "random", 300, 0)
            counts = Counter(client.sample_opponent("main").player_b for _ in range(N))
    finally:
        server.stop(0)
    assert counts["charge"] > 0.9 * N, counts


def test_fractions_over_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        LeagueSettings(self_play_fraction=0.7, builtin_fraction=0.4)


def test_five_sampling_follows_quality_scores_and_survives_a_restart(tmp_path: Path) -> None:
    """OpenAI Five: past players drawn by softmax(q); each learner win over player i
    lowers q_i by 0.01 / (N p_i); the scores are replayed from the database on restart."""
    settings = {"self_play_fraction": 0.0, "opponent_sampling": "five"}
    server = _serve(tmp_path, **settings)
    with LeagueClient(server.address, TOKEN) as client:
        client.register_player("main")
        client.register_snapshot("main", 1)
        client.register_snapshot("main", 2)
        _report_record(client, "main", "main@v1", 30, 0)  # main keeps beating v1
        _report_record(client, "main", "main@v2", 0, 10)  # ... and losing to v2
        live = Counter(client.sample_opponent("main").player_b for _ in range(N))
    server.stop(0)
    # The same updates by hand: pool (random, v1, v2), all starting at 0.
    q = {"random": 0.0, "main@v1": 0.0, "main@v2": 0.0}
    for _ in range(30):
        exps = {k: math.exp(v) for k, v in q.items()}
        p_v1 = exps["main@v1"] / sum(exps.values())
        q["main@v1"] -= 0.01 / (3 * p_v1)
    total = sum(math.exp(v) for v in q.values())
    expected = {k: math.exp(v) / total for k, v in q.items()}
    assert expected["main@v1"] < 0.3  # from 1/3: many standard errors at N draws

    server = _serve(tmp_path, **settings)  # scores come back from the stored results
    try:
        with LeagueClient(server.address, TOKEN) as client:
            counts = Counter(client.sample_opponent("main").player_b for _ in range(N))
    finally:
        server.stop(0)
    for opponent, p in expected.items():
        sd = math.sqrt(p * (1 - p) / N)
        for drawn in (live, counts):
            assert abs(drawn[opponent] / N - p) < 4 * sd, (opponent, drawn, expected)


@pytest.mark.parametrize("sampling", ["pfsp_hard", "uniform"])
def test_a_batch_of_draws_is_the_same_as_single_draws(tmp_path: Path, sampling: str) -> None:
    """SampleOpponents works the pools and weights out once per call; seed for seed it must
    pick what as many SampleOpponent calls pick."""
    picks = {}
    for name in ("single", "batch"):
        server = _serve(
            _mkdir(tmp_path / name),
            self_play_fraction=0.2,
            builtin_fraction=0.3,
            builtins=("random", "charge"),
            opponent_sampling=sampling,
            builtin_sampling="uniform",
        )
        try:
            with LeagueClient(server.address, TOKEN) as client:
                client.register_player("main")
                for v in (1, 2, 3):
                    client.register_snapshot("main", v)
                _report_record(client, "main", "random", 9, 1)
                _report_record(client, "main", "main@v2", 2, 8)
                if name == "single":
                    drawn = [client.sample_opponent("main").player_b for _ in range(400)]
                else:
                    drawn = [m.player_b for m in client.sample_opponents("main", 400)]
        finally:
            server.stop(0)
        picks[name] = drawn
    assert picks["single"] == picks["batch"]
    assert len(set(picks["batch"])) == 6  # self, two builtins, three snapshots
