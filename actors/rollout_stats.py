"""What a rollout worker counts while it plays (actors/rollout.py), read by the Ray actor's
`stats()` from another thread and summed by the job's watcher (cluster/watcher.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.league_link import ReportCounts


@dataclass
class RolloutStats:
    env_steps: int = 0  # every agent decision in every game
    learner_steps: int = 0  # decisions that became training data
    chunks_sent: int = 0
    games: int = 0
    eval_games: int = 0
    weight_updates: int = 0
    # The league link's own object, so these are final once the link is closed (the
    # actor reads its stats after closing it): every finished game is one result.
    results: ReportCounts = field(default_factory=ReportCounts)
    # Per lineage, over its trained agents' finished training episodes (a game against
    # its latest self counts each seat): how many, and the sums of their returns (every
    # reward the env gave the agent, shaping included: what the learner maximises) and
    # of their decisions. Sums, so the watcher can take means over any interval.
    episodes: dict[str, int] = field(default_factory=dict)
    return_sum: dict[str, float] = field(default_factory=dict)
    decision_sum: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_lineages(cls, lineages: list[str], results: ReportCounts) -> RolloutStats:
        stats = cls(results=results)
        # Every key up front: stats are read from another thread while the worker plays.
        for tally in (stats.episodes, stats.return_sum, stats.decision_sum):
            tally.update(dict.fromkeys(lineages, 0))
        return stats

    def tally_episode(self, lineage: str, episode_return: float, decisions: int) -> None:
        """One trained agent's finished training episode."""
        self.episodes[lineage] += 1
        self.return_sum[lineage] += episode_return
        self.decision_sum[lineage] += decisions
