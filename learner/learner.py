"""The central learner: validated chunks in, an algorithm's updates, weights out.

It is the generic half of every learner (learner/algorithm.py has the other): a
consumer of one lineage's trajectory stream with Sample Factory's accounting by policy
version. A chunk is acknowledged only after the update that used it; chunks more than
`max_policy_lag` versions old are acknowledged as dropped and counted; undecodable chunks
go to the dead-letter stream with the reason. Chunks left pending by a dead learner are
claimed back at start-up and periodically. After every `publish_every` updates it
publishes the algorithm's acting weights as a new version and asks the league whether a
snapshot is due; checkpoints hold every net and optimizer the algorithm names.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.checkpoints import atomic_write, load_checkpoint, save_checkpoint
from core.chunks import TrajectoryChunk, job_chunk_spec
from core.codec import CodecError, decode_chunk, encode_weights
from core.config import JobConfig
from core.league_protocol import LearnerLeague
from core.players import snapshot_id
from core.spaces import PolicyShape
from learner.algorithm import GRADIENT_STEPS, build_algorithm
from transport.streams import TrajectoryStream
from transport.weights import WeightStore

log = logging.getLogger(__name__)


def pick_device(setting: str) -> torch.device:
    if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@dataclass
class LearnerCounters:
    version: int = 0
    updates: int = 0
    steps_trained: int = 0
    chunks_trained: int = 0
    chunks_dropped_lag: int = 0
    chunks_rejected: int = 0
    last_snapshot_version: int = 0  # snapshots count versions from here
    resets: int = 0  # restarts from the seed weights (exploiters, after a snapshot)
    # Optimizer steps, for algorithms that say how many an update took (the off-policy
    # ones: their replay ratio sets it; learner/replay.py).
    gradient_steps: int = 0


class Learner:
    def __init__(
        self,
        config: JobConfig,
        run_dir: Path,
        stream: TrajectoryStream,
        weights: WeightStore,
        league: LearnerLeague,
        obs_dim: int,
        num_actions: int,
        resume: bool = False,
        continuous: bool = False,
        lineage: str | None = None,
        goal_dim: int = 0,
    ):
        """`lineage`: the league player this learner trains (a team's name in team games;
        default league.learner_player). `goal_dim`: a goal task's goal size (HER jobs)."""
        self.config, self.run_dir = config, run_dir
        self.stream, self.weights, self.league = stream, weights, league
        self.player = lineage or config.league.learner_player
        self.role = config.learners()[self.player].role
        self.stream_name = config.stream_name(self.player)
        self.device = pick_device(config.algorithm.device)
        # Adam's moments of units whose gradient stays zero (dead ReLUs) decay into
        # subnormal floats, and CPU arithmetic on them made a SAC step 10x slower after
        # ~20k FetchPush steps (BENCHMARKS.md, "HER: Fetch"): flush them to zero.
        torch.set_flush_denormal(True)
        shape = PolicyShape(obs_dim, num_actions, continuous, goal_dim)
        self.algorithm = build_algorithm(config, shape, self.device)
        self.spec = job_chunk_spec(config, shape)
        self.consumer = f"learner-{socket.gethostname()}"
        self.counters = LearnerCounters()
        self.checkpoint_path = run_dir / "checkpoints" / config.names().checkpoint_file(self.player)
        if resume:
            meta = load_checkpoint(
                self.checkpoint_path, self.algorithm.nets(), self.algorithm.optimizers()
            )
            self.counters = LearnerCounters(**meta["counters"])
            if "last_snapshot_version" not in meta["counters"]:  # saved before it existed
                v, every = self.counters.version, config.league.snapshot_every_versions
                self.counters.last_snapshot_version = v - v % every
            log.info("resumed from %s at version %d", self.checkpoint_path, self.counters.version)
        self._writer = None
        self._last_checkpoint = time.monotonic()
        self._last_claim = time.monotonic()
        self._last_update_end: float | None = None
        # Validated chunks (and their stream ids) waiting for the next update.
        self._ids: list[str] = []
        self._chunks: list[TrajectoryChunk] = []
        # Policy lag of recently trained chunks (for the status line and benchmarks).
        self.lags: deque[int] = deque(maxlen=10_000)
        # Every trained chunk's lag since start (this incarnation): lag -> chunks.
        self.lag_counts: Counter[int] = Counter()
        # The same per trained step (each step's own behaviour version): lag -> steps.
        self.step_lag_counts: Counter[int] = Counter()

    def lag_histogram(self) -> dict[int, int]:
        """Policy lag (learner version at training time - the chunk's oldest version) ->
        chunks trained with it, since this learner started; dropped chunks (lag over
        transport.max_policy_lag) are not in it (counters.chunks_dropped_lag)."""
        return dict(sorted(self.lag_counts.items()))

    def step_lag_histogram(self) -> dict[int, int]:
        """Policy lag per trained step (learner version at training time - the version
        that chose that step's action) -> steps, since this learner started: Sample
        Factory's per-sample policy lag. A chunk's oldest step bounds it from above."""
        return dict(sorted(self.step_lag_counts.items()))

    # -- weights, snapshots, checkpoints ------------------------------------------
    def publish(self) -> int:
        state = self.algorithm.acting_state()
        meta = {
            "published_unix": repr(time.time()),
            "player": self.player,
            "steps_trained": str(self.counters.steps_trained),
        }
        # The payload names its own version; the store refuses it if another learner
        # published that version first (VersionConflict), so versions never repeat.
        version = self.weights.next_version(self.player)
        self.weights.publish(
            self.player, encode_weights(state, version, meta), expected_version=version
        )
        self.counters.version = version
        return version

    def snapshot(self) -> str:
        """Freezes the current version as a league player (weights pinned + on disk)."""
        version = self.counters.version
        self.weights.pin(self.player, version)
        data = self.weights.get(self.player, version)
        if data is not None:
            name = snapshot_id(self.player, version)
            atomic_write(self.run_dir / "snapshots" / f"{name}.safetensors", data)
        player_id = self.league.register_snapshot(self.player, version)
        self.counters.last_snapshot_version = version
        return player_id

    def maybe_snapshot(self) -> None:
        """Asks the league whether this lineage is due for a snapshot (every
        `snapshot_every_versions`, or earlier when it beats its opponents; asked every
        tenth of that so the question costs one call per several updates) and restarts
        from the seed weights when the league says so (exploiters)."""
        every = self.config.league.snapshot_every_versions
        since = self.counters.version - self.counters.last_snapshot_version
        if since < every and since % max(1, every // 10):
            return
        advice = self.league.snapshot_due(self.player, since, every)
        if not advice.due:
            return
        snapshot = self.snapshot()
        log.info("%s: snapshot %s (%s)", self.player, snapshot, advice.reason)
        if advice.reset:
            self.algorithm.restart()
            self.counters.resets += 1
            self.publish()  # the restarted weights get a version of their own
            self.counters.last_snapshot_version = self.counters.version

    def checkpoint(self) -> None:
        meta = {"counters": self.counters.__dict__, "config_job": self.config.job}
        save_checkpoint(
            self.checkpoint_path, self.algorithm.nets(), self.algorithm.optimizers(), meta
        )
        self._last_checkpoint = time.monotonic()

    def start(self) -> None:
        """Registers with the league and publishes the first (or resumed) weights."""
        self.league.register_player(self.player, "learner", role=self.role.value)
        self.stream.ensure_group()
        # Versions only grow, also across restarts with a fresh or kept Redis.
        self.weights.ensure_version_at_least(self.player, self.counters.version)
        self.publish()
        # Take back whatever a previous incarnation left pending.
        self._collect(self.stream.claim_stale(self.consumer, 0, 10_000))

    # -- the loop ---------------------------------------------------------------
    def _collect(self, entries: list[tuple[str, bytes]]) -> None:
        version = self.counters.version
        lag_limit = self.config.transport.max_policy_lag
        stale: list[str] = []
        for entry_id, data in entries:
            try:
                chunk = decode_chunk(data, self.spec, job=self.stream_name)
            except CodecError as exc:
                self.stream.dead_letter(entry_id, data, str(exc))
                self.counters.chunks_rejected += 1
                n = self.counters.chunks_rejected
                if n <= 10 or n % 1000 == 0:  # loud, but not one line per chunk
                    log.warning(
                        "rejected chunk %s (%d so far, kept in dead:%s): %s",
                        entry_id,
                        n,
                        self.stream_name,
                        exc,
                    )
                continue
            if version - chunk.policy_version > lag_limit:
                stale.append(entry_id)
                continue
            self._ids.append(entry_id)
            self._chunks.append(chunk)
        if stale:
            self.counters.chunks_dropped_lag += self.stream.ack(stale, "dropped_lag")

    def step(self, block_ms: int = 100) -> bool:
        """One turn of the loop: reclaim stale chunks now and then, read what is
        there, train once a batch is full. True if it trained."""
        cfg = self.config
        want = cfg.algorithm.batch_chunks
        if time.monotonic() - self._last_claim > cfg.transport.claim_idle_ms / 1000:
            self._last_claim = time.monotonic()
            self._collect(self.stream.claim_stale(self.consumer, cfg.transport.claim_idle_ms))
        if len(self._chunks) < want:
            self._collect(self.stream.read(self.consumer, want - len(self._chunks), block_ms))
        if len(self._chunks) < want:
            return False
        self.train_step(self._ids[:want], self._chunks[:want])
        self._ids, self._chunks = self._ids[want:], self._chunks[want:]
        if time.monotonic() - self._last_checkpoint > cfg.checkpoints.every_seconds:
            self.checkpoint()
        return True

    def run(self, should_stop: Callable[[], bool]) -> LearnerCounters:
        self.start()
        while not should_stop():
            self.step()
        self.checkpoint()
        return self.counters

    def train_step(self, ids: list[str], chunks: list[TrajectoryChunk]) -> dict[str, float]:
        t0 = time.perf_counter()
        stats = self.algorithm.update(chunks, self.counters.steps_trained)
        self.counters.gradient_steps += int(stats.pop(GRADIENT_STEPS, 0))
        steps = sum(c.num_steps for c in chunks)
        lags = [self.counters.version - c.policy_version for c in chunks]
        self.lags.extend(lags)
        self.lag_counts.update(lags)
        step_lags = np.concatenate([self.counters.version - c.policy_versions for c in chunks])
        values, counts = np.unique(step_lags, return_counts=True)
        self.step_lag_counts.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        # Acknowledge only now that the update that used the chunks is done.
        self.stream.ack(ids, "consumed", steps_per_id=[c.num_steps for c in chunks])
        self.counters.updates += 1
        self.counters.steps_trained += steps
        self.counters.chunks_trained += len(chunks)
        if self.counters.updates % self.config.algorithm.publish_every == 0:
            self.publish()
            self.maybe_snapshot()
        now = time.perf_counter()
        elapsed = now - t0
        if self._last_update_end is not None:
            # Steps trained per wall second between consecutive updates: the rate the
            # whole pipeline delivers (waiting for chunks included).
            stats["throughput/steps_per_s"] = steps / (now - self._last_update_end)
        self._last_update_end = now
        stats.update(
            {
                "lag/mean": float(np.mean(lags)),
                "lag/max": float(np.max(lags)),
                "throughput/update_seconds": elapsed,
                "version": float(self.counters.version),
            }
        )
        self._log_scalars(stats)
        return stats

    def _log_scalars(self, stats: dict[str, float]) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            folder = self.config.names().tensorboard_dir(self.player)
            self._writer = SummaryWriter(str(self.run_dir / "tb" / folder))
        step = self.counters.steps_trained
        for key, value in stats.items():
            self._writer.add_scalar(key, value, step)
        self._writer.add_scalar(
            "counters/chunks_dropped_lag", self.counters.chunks_dropped_lag, step
        )
        self._writer.add_scalar("counters/chunks_rejected", self.counters.chunks_rejected, step)
