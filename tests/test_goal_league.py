"""Goal jobs in the league: evaluation episodes recorded once each over real gRPC, their
success curve, and the dashboard showing it in Chromium in place of Elo."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.config import LeagueSettings
from core.league_protocol import EvaluationReport, LeagueError
from league.client import LeagueClient
from league.dashboard import Dashboard
from league.league_view import LeagueView
from league.records import PlayerKind
from league.server import LeagueServer
from league.store import LeagueStore
from tests.test_dashboard import Elements, browse

TOKEN = "goal-league-token"


def episodes(start: int, successes: list[bool], steps: int, player: str = "main") -> list:
    return [
        EvaluationReport(f"actor-1-e{start + i}", player, 3, steps, success)
        for i, success in enumerate(successes)
    ]


@pytest.fixture()
def league(tmp_path: Path):
    server = LeagueServer(tmp_path / "league.db", token=TOKEN, settings=LeagueSettings())
    server.start()
    try:
        with LeagueClient(server.address, token=TOKEN) as client:
            client.register_player("main")
            yield client
    finally:
        server.stop(1.0)


def test_evaluation_episodes_are_recorded_once_and_curved(league: LeagueClient, tmp_path) -> None:
    early = episodes(0, [False, False, False, True], steps=1_000)
    late = episodes(4, [True, True, True, False, True, True], steps=9_000)
    assert league.report_evaluations(early + late) == 10
    assert league.report_evaluations(late) == 0  # a retry after a lost reply: nothing twice
    # A bad episode refuses its whole batch, naming it; nothing of the batch is stored.
    fresh = episodes(10, [True], steps=9_500)
    with pytest.raises(LeagueError) as unknown:
        league.report_evaluations(fresh + episodes(11, [True], 9_500, player="nobody"))
    assert unknown.value.code == "NOT_FOUND" and "nobody" in unknown.value.message
    with pytest.raises(LeagueError) as bad:
        league.report_evaluations([*fresh, EvaluationReport("no spaces", "main", 3, 1, True)])
    assert bad.value.code == "INVALID_ARGUMENT" and "episodes[1]" in bad.value.message
    with pytest.raises(LeagueError) as random_player:
        league.report_evaluations([EvaluationReport("e-r", "random", 0, 0, True)])
    assert "not a LEARNER" in random_player.value.message

    view = LeagueView(tmp_path / "league.db")
    try:
        doc = view.evaluations_doc(points=2)
    finally:
        view.close()
    assert doc["episodes"] == 10
    first, second = doc["players"]["main"]
    assert (first["steps_trained"], first["episodes"], first["successes"]) == (1_000, 4, 1)
    assert (second["steps_trained"], second["episodes"], second["successes"]) == (9_000, 6, 5)
    assert first["ci_low"] < 0.25 < first["ci_high"] and second["success_rate"] == 5 / 6


def test_a_database_from_before_goal_jobs_has_no_evaluations(tmp_path: Path) -> None:
    store = LeagueStore(tmp_path / "league.db")
    store.add_player("random", PlayerKind.BUILTIN)
    store.close()
    with sqlite3.connect(tmp_path / "league.db") as conn:
        conn.execute("DROP TABLE evaluations")
    view = LeagueView(tmp_path / "league.db")
    try:
        assert view.evaluations_doc() == {"episodes": 0, "players": {}}
    finally:
        view.close()
    LeagueStore(tmp_path / "league.db").close()  # the service's open adds the table
    view = LeagueView(tmp_path / "league.db")
    try:
        assert view.evaluations_doc()["episodes"] == 0
    finally:
        view.close()


def test_the_dashboard_plots_success_in_place_of_elo(league: LeagueClient, tmp_path) -> None:
    for k, steps in enumerate((2_000, 4_000, 6_000, 8_000)):
        league.report_evaluations(episodes(10 * k, [True] * k + [False] * (4 - k), steps))
    dashboard = Dashboard(tmp_path / "league.db", tmp_path / "status.json", title="goal-run")
    dashboard.start()
    try:
        dom = browse(dashboard.url, tmp_path / "profile", "--dump-dom").stdout
    finally:
        dashboard.stop()
    page = Elements()
    page.feed(dom)
    sections = {a.get("id") or a["class"]: a for t, a in page.elements if t == "section"}
    assert "hidden" not in sections["success-panel"]
    hidden = [a for a in sections.values() if "self-play-only" in a.get("class", "")]
    assert len(hidden) == 3 and all("hidden" in a for a in hidden)
    (line,) = page.having("path", "success-line")
    assert line["data-player"] == "main" and line["d"].count("L") == 3
    assert len(page.having("circle", "success-dot")) == 4


def test_a_goal_actor_keeps_its_evaluations_while_the_league_is_away(
    redis_client, tmp_path: Path
) -> None:
    """Evaluation episodes finished while the league is down stay queued and reach it
    (once each) when it answers again."""
    from actors.goal_rollout import GoalWorker
    from core.config import parse_config
    from learner.learner import Learner
    from transport.streams import TrajectoryStream
    from transport.weights import WeightStore

    cfg = parse_config(
        {
            "job": "evq",
            "env": {"name": "envs.goal.bitflip", "kwargs": {"n_bits": 4}},
            "model": {"hidden": [16]},
            "algorithm": {"name": "dqn", "learning_starts": 10_000},
            "actors": {"envs_per_actor": 8, "chunk_length": 4},
            "league": {"eval_fraction": 0.5},
            "transport": {"max_stream_length": 10_000, "max_policy_lag": 1_000_000},
        }
    )
    db = tmp_path / "league.db"
    first = LeagueServer(db, token=TOKEN, settings=LeagueSettings())
    first.start()
    client = LeagueClient(first.address, token=TOKEN, retry_s=0.2)
    client.register_player("main")
    stream = TrajectoryStream(redis_client, cfg.job, cfg.transport.max_stream_length)
    store = WeightStore(redis_client, cfg.job)
    Learner(cfg, tmp_path, stream, store, client, 4, 5, goal_dim=4).start()
    worker = GoalWorker(cfg, "actor-q", store, stream, seed=3, league=client)
    worker.pool.wait_for_learner(5.0)
    worker.run(lambda: False, max_steps=20)
    sent = worker.stats.eval_episodes
    assert sent > 0 and not worker._evaluations
    first.stop(0.5)
    worker.run(lambda: False, max_steps=20)  # the league is down: kept
    assert len(worker._evaluations) == worker.stats.eval_episodes - sent > 0
    second = LeagueServer(db, token=TOKEN, settings=LeagueSettings())
    second.start()
    try:
        worker.league = LeagueClient(second.address, token=TOKEN)
        assert worker.report_evaluations() and not worker._evaluations
        assert worker.report_evaluations()  # nothing left, nothing twice
        view = LeagueView(db)
        try:
            assert view.evaluations_doc()["episodes"] == worker.stats.eval_episodes
        finally:
            view.close()
    finally:
        second.stop(0.5)
