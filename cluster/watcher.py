"""The running job's watch loop: progress lines, RUN/status.json, scale and stop requests.

`Watcher.watch` is the driver's main loop while a job runs (launcher.run_job): it waits
on the learners' and actors' `run()` calls, applies the control mailbox's requests
(cluster/control.py) to the actor fleet (cluster/fleet.py), and every sample prints a
progress line and rewrites the status file (cluster/status.py).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.fleet import ActorFleet, FleetError
from cluster.status import HISTORY_SAMPLES, build_status, history_entry, write_status
from league.client import LeagueError
from transport.streams import TrajectoryStream

log = logging.getLogger("selfplay")


class RunError(RuntimeError):
    pass


def get_or_explain(ref: Any) -> Any:
    """ray.get, with a remote failure turned into a one-line RunError (the full
    traceback is in the Ray worker's log above)."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
        lines = [line for line in str(cause).splitlines() if line.strip()]
        raise RunError(f"{type(cause).__name__}: {lines[-1] if lines else ''}") from None


@dataclass(frozen=True)
class EpisodeTally:
    """Training episodes of one lineage and the sums of their returns and decisions."""

    episodes: int = 0
    returns: float = 0.0
    decisions: int = 0

    def __add__(self, other: EpisodeTally) -> EpisodeTally:
        return EpisodeTally(
            self.episodes + other.episodes,
            self.returns + other.returns,
            self.decisions + other.decisions,
        )

    def __sub__(self, other: EpisodeTally) -> EpisodeTally:
        return EpisodeTally(
            self.episodes - other.episodes,
            self.returns - other.returns,
            self.decisions - other.decisions,
        )


@dataclass
class _Sample:
    t: float
    learner_steps: int  # steps consumed by the learner (stream accounting)
    gradient_steps: int  # optimizer steps the learners counted (off-policy ones)
    env_steps: int  # every agent decision in every actor's games


class Watcher:
    """Prints progress to stderr and rewrites RUN/status.json (cluster/status.py) every
    sample; its first and last samples give the steady-state throughput (start-up
    excluded) reported in the run summary."""

    # An actor that does not answer its stats call in this long counts as not alive.
    STATS_TIMEOUT_S = 10.0

    # How often the job's mailbox (cluster/control.py) is read for scale / stop requests.
    CONTROL_POLL_S = 1.0

    def __init__(
        self,
        learners: dict[str, Any],
        fleet: ActorFleet,
        streams: dict[str, TrajectoryStream],
        status_path: Path | None = None,
        mailbox: Any = None,
        league_size: Callable[[], int] | None = None,
        tb_dir: Path | None = None,
    ):
        self.learners, self.fleet, self.streams = learners, fleet, streams
        self.mailbox, self.league_size = mailbox, league_size
        self.tb_dir = tb_dir
        self._writer: Any = None
        self.samples: list[_Sample] = []
        self.status_path = status_path
        self.started_at = time.time()
        self._history: deque[dict[str, Any]] = deque(maxlen=HISTORY_SAMPLES)
        self._status: dict[str, Any] | None = None
        # Last env step count per actor: one that stops answering keeps its steps in
        # the total, so the rate does not go negative.
        self._env_steps: dict[str, int] = {}
        # Per actor id, per lineage: the actor's episode tallies (RolloutStats), kept
        # like _env_steps; the totals before the last sample give each sample's means.
        self._tallies: dict[str, dict[str, EpisodeTally]] = {}
        self._last_totals: dict[str, EpisodeTally] = {}
        # Goal jobs: per actor id, its greedy evaluation episodes and their successes.
        self._evals: dict[str, tuple[int, int]] = {}
        self._last_evals = (0, 0)

    def _actor_stats(self) -> tuple[int, int]:
        """(env steps of all actors, actors that answered)."""
        import ray

        refs = [a.stats.remote() for a in self.fleet.actors()]
        if not refs:
            return sum(self._env_steps.values()), 0
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.STATS_TIMEOUT_S)
        answered = set(ready)
        alive = 0
        for ref in refs:
            if ref not in answered:
                continue
            try:
                reply = ray.get(ref)
                # Keyed by actor id: actors come and go (scaling, restarts), and each
                # incarnation counts its own steps from 0.
                self._env_steps[reply["actor_id"]] = int(reply["env_steps"])
                returns, decisions = reply["return_sum"], reply["decision_sum"]
                self._tallies[reply["actor_id"]] = {
                    lineage: EpisodeTally(int(n), float(returns[lineage]), int(decisions[lineage]))
                    for lineage, n in reply["episodes"].items()
                }
                if "eval_episodes" in reply:
                    evals = int(reply["eval_episodes"]), int(reply["eval_successes"])
                    self._evals[reply["actor_id"]] = evals
            except ray.exceptions.RayError:
                continue  # a dead actor; the watch loop ends the run when its run() ends
            alive += 1
        return sum(self._env_steps.values()), alive

    def sample(self) -> None:
        import ray

        replies = ray.get([learner.stats.remote() for learner in self.learners.values()])
        stats = dict(zip(self.learners, replies, strict=True))
        env_steps, alive = self._actor_stats()
        streams = {t: s.stats() for t, s in self.streams.items()}
        consumed = sum(s["steps_consumed"] for s in streams.values())
        now = time.monotonic()
        prev = self.samples[-1] if self.samples else None
        gradient_steps = sum(int(st.get("gradient_steps", 0)) for st in stats.values())
        self.samples.append(_Sample(now, consumed, gradient_steps, env_steps))
        rate = 0.0 if prev is None else (consumed - prev.learner_steps) / (now - prev.t)
        episodes = self._episode_means()
        parts = []
        for lineage, st in stats.items():
            s = streams[lineage]
            name = f"{lineage} " if len(stats) > 1 else ""
            mean = episodes.get(lineage, {}).get("episode_return_mean")
            success = episodes.get(lineage, {}).get("eval_success_rate")
            parts.append(
                f"{name}version {st['version']} updates {st['updates']} trained "
                f"{st['steps_trained']} steps stream {s['length']} dropped_lag "
                f"{s['chunks_dropped_lag']} rejected {s['chunks_rejected']} "
                f"lag_median {st['lag_median']}"
                + ("" if mean is None else f" return {mean:+.3f}")
                + ("" if success is None else f" success {success:.3f}")
            )
        self._log_episodes(episodes, stats)
        print(
            f"[{time.strftime('%H:%M:%S')}] {' | '.join(parts)} ({rate:,.0f} steps/s)",
            file=sys.stderr,
            flush=True,
        )
        if self.status_path is None:
            return
        interval = env_rate = learner_rate = None
        if prev is not None:
            interval = now - prev.t
            env_rate = round((env_steps - prev.env_steps) / interval, 1)
            learner_rate = round(rate, 1)
        status = build_status(
            now=time.time(),
            started_at=self.started_at,
            interval_s=None if interval is None else round(interval, 3),
            learners=stats,
            streams=streams,
            env_steps=env_steps,
            env_steps_per_s=env_rate,
            learner_steps_per_s=learner_rate,
            actors=self.fleet.size,
            actors_alive=alive,
            league_players=self._league_players(),
            episodes=episodes,
        )
        self._history.append(history_entry(status))
        status["history"] = list(self._history)
        self._write(self.status_path, status)
        if self.mailbox is not None:
            self.mailbox.report.remote({k: v for k, v in status.items() if k != "history"})

    def _episode_means(self) -> dict[str, dict[str, Any]]:
        """Per lineage: training episodes so far, and their mean return and length (the
        learner's decisions) over the episodes finished since the last sample (None
        when none finished)."""
        totals: dict[str, EpisodeTally] = {}
        for per_lineage in self._tallies.values():
            for lineage, tally in per_lineage.items():
                totals[lineage] = totals.get(lineage, EpisodeTally()) + tally
        out: dict[str, dict[str, Any]] = {}
        for lineage, now in totals.items():
            new = now - self._last_totals.get(lineage, EpisodeTally())
            out[lineage] = {
                "episodes": now.episodes,
                "episode_return_mean": round(new.returns / new.episodes, 4)
                if new.episodes > 0
                else None,
                "episode_length_mean": round(new.decisions / new.episodes, 1)
                if new.episodes > 0
                else None,
            }
        self._last_totals = totals
        if self._evals and len(out) == 1:  # a goal job: one lineage
            episodes = sum(e for e, _ in self._evals.values())
            successes = sum(s for _, s in self._evals.values())
            new_episodes = episodes - self._last_evals[0]
            new_successes = successes - self._last_evals[1]
            (lineage,) = out
            out[lineage]["eval_episodes"] = episodes
            out[lineage]["eval_success_rate"] = (
                round(new_successes / new_episodes, 4) if new_episodes > 0 else None
            )
            self._last_evals = (episodes, successes)
        return out

    def _log_episodes(
        self, episodes: dict[str, dict[str, Any]], learners: dict[str, dict[str, Any]]
    ) -> None:
        """TensorBoard scalars in `tb_dir` (RUN/tb/episodes), against the lineage's
        trained steps like the learner's own scalars."""
        if self.tb_dir is None:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.tb_dir), flush_secs=30)
        for lineage, means in episodes.items():
            if means["episode_return_mean"] is None or lineage not in learners:
                continue
            prefix = "episodes/" if len(learners) == 1 else f"episodes/{lineage}/"
            step = int(learners[lineage]["steps_trained"])
            self._writer.add_scalar(prefix + "return_mean", means["episode_return_mean"], step)
            self._writer.add_scalar(prefix + "length_mean", means["episode_length_mean"], step)

    def finish(self, state: str) -> None:
        """Marks the last status sample `stopped` or `failed` (nothing if none was taken)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._status is not None and self.status_path is not None:
            self._write(
                self.status_path, {**self._status, "state": state, "stopped_at": time.time()}
            )

    def _write(self, path: Path, status: dict[str, Any]) -> None:
        try:
            write_status(path, status)
        except OSError as exc:  # a full disk must not stop training; the next sample retries
            log.warning("cannot write %s: %s", path, exc)
        self._status = status

    def throughput(self) -> dict[str, float]:
        if len(self.samples) < 2:
            return {}
        a, b = self.samples[0], self.samples[-1]
        dt = b.t - a.t
        return {
            "window_seconds": round(dt, 1),
            "learner_steps_per_s": round((b.learner_steps - a.learner_steps) / dt, 1),
            "env_steps_per_s": round((b.env_steps - a.env_steps) / dt, 1),
            "gradient_steps_per_s": round((b.gradient_steps - a.gradient_steps) / dt, 1),
        }

    def _league_players(self) -> int | None:
        if self.league_size is None:
            return None
        try:
            return self.league_size()
        except LeagueError as exc:  # a league restarting must not stop the job
            log.warning("league did not answer for the status: %s", exc.code)
            return None

    def _note_fleet(self) -> None:
        if self.mailbox is not None:
            self.mailbox.note_fleet.remote(self.fleet.size, len(self.fleet.draining))

    def watch(self, learner_runs: list[Any], deadline: float | None, every_s: float) -> None:
        """Samples every `every_s` until the deadline or a stop request, applying scale
        requests as they come; a learner or an actor whose run ends unasked ends the run."""
        import ray

        next_sample = time.monotonic() + every_s
        while deadline is None or time.monotonic() < deadline:
            now = time.monotonic()
            wait_s = min(next_sample, deadline or next_sample) - now
            if self.mailbox is not None:
                wait_s = min(wait_s, self.CONTROL_POLL_S)
            runs = [*learner_runs, *self.fleet.runs()]
            done, _ = ray.wait(runs, num_returns=1, timeout=max(0.0, wait_s))
            if done:
                if done[0] in learner_runs:
                    get_or_explain(done[0])  # raises the remote error, if that is why
                    raise RunError("a learner stopped unexpectedly")
                try:
                    self.fleet.settle(done, get_or_explain)
                except FleetError as exc:
                    raise RunError(str(exc)) from None
                self._note_fleet()
                continue
            if self.mailbox is not None:
                desired, stop = ray.get(self.mailbox.poll.remote())
                if stop:
                    print("stop requested: stopping cleanly...", file=sys.stderr, flush=True)
                    return
                if desired != self.fleet.size:
                    self.fleet.scale_to(desired)
                    self._note_fleet()
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + every_s
                self.sample()
