"""The watch loop's episode figures: means over each sample's new episodes, summed over
actors that come and go, written to status.json's learners and to TensorBoard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cluster.status import build_status
from cluster.watcher import EpisodeTally, Watcher


def _watcher(tb_dir: Path | None = None) -> Watcher:
    return Watcher(learners={}, fleet=None, streams={}, tb_dir=tb_dir)  # type: ignore[arg-type]


def test_episode_means_cover_only_the_episodes_since_the_last_sample(tmp_path: Path) -> None:
    watcher = _watcher(tmp_path / "tb")
    watcher._tallies = {"actor0-a": {"main": EpisodeTally(4, 2.0, 40)}}
    first = watcher._episode_means()
    assert first == {
        "main": {"episodes": 4, "episode_return_mean": 0.5, "episode_length_mean": 10.0}
    }
    # actor0 finishes two more episodes (returns -1 in all); a second actor joins with two.
    watcher._tallies["actor0-a"] = {"main": EpisodeTally(6, 1.0, 70)}
    watcher._tallies["actor1-b"] = {"main": EpisodeTally(2, 1.0, 10)}
    second = watcher._episode_means()
    assert second["main"] == {
        "episodes": 8,
        "episode_return_mean": 0.0,  # (-1 + 1) over 4 new episodes
        "episode_length_mean": 10.0,  # (30 + 10) / 4
    }
    # Nothing new: no mean (not a stale one), the count stays.
    assert watcher._episode_means()["main"] == {
        "episodes": 8,
        "episode_return_mean": None,
        "episode_length_mean": None,
    }
    learners: dict[str, dict[str, Any]] = {"main": {"steps_trained": 4096}}
    watcher._log_episodes(first, {"main": {"steps_trained": 2048}})
    watcher._log_episodes(second, learners)
    watcher.finish("stopped")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    returns = [(e.step, e.value) for e in events.Scalars("episodes/return_mean")]
    assert returns == [(2048, 0.5), (4096, 0.0)]
    assert [e.value for e in events.Scalars("episodes/length_mean")] == [10.0, 10.0]


def _status(**episode_figures: Any) -> dict[str, Any]:
    return build_status(
        now=10.0,
        started_at=0.0,
        interval_s=None,
        learners={"main": {"version": 3, "updates": 2, "steps_trained": 64, "lag_median": 1}},
        streams={},
        env_steps=128,
        env_steps_per_s=None,
        learner_steps_per_s=None,
        actors=1,
        actors_alive=1,
        **episode_figures,
    )


def test_status_carries_each_learners_episode_figures() -> None:
    figures = {"episodes": 8, "episode_return_mean": 0.25, "episode_length_mean": 9.0}
    main = _status(episodes={"main": figures})["learners"]["main"]
    assert {k: main[k] for k in figures} == figures
    # Before any actor answered: zero episodes, no means.
    bare = _status()["learners"]["main"]
    assert (bare["episodes"], bare["episode_return_mean"], bare["episode_length_mean"]) == (
        0,
        None,
        None,
    )
