"""Keeps the rollout loop from waiting on league round trips.

A game needs a match when it starts and reports a result when it ends: two gRPC
calls per game, which stalled the rollout loop for most of its time on short games
like connect_four. Here a background thread samples matches ahead of need and
sends results from a queue; the loop only touches in-memory deques. Results are
still idempotent by match id, so a report retried after a league restart counts
once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from league.client import LeagueClient, LeagueError, Match

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    match_id: str
    player_a: str
    player_b: str
    outcome: str
    a_version: int
    kind: str
    steps: int


class LeagueLink:
    """`players`: the learning lineages of the job. One: training opponents come from its
    own lineage (self-play). Two (teams): each one's opponents come from the other's
    lineage, and eval matches put a frozen player of the first against one of the second."""

    def __init__(
        self,
        client: LeagueClient,
        players: str | Sequence[str],
        prefetch: int,
        eval_retry_s: float = 5.0,
    ):
        self.players = (players,) if isinstance(players, str) else tuple(players)
        if len(self.players) not in (1, 2):
            raise ValueError(f"a league link serves one or two lineages, got {self.players}")
        self.client, self.prefetch = client, max(1, prefetch)
        self.player = self.players[0]
        # player -> opponent lineage ("" = its own)
        self._opponents = (
            {self.player: ""}
            if len(self.players) == 1
            else {self.players[0]: self.players[1], self.players[1]: self.players[0]}
        )
        self._eval_lineages = ("", "") if len(self.players) == 1 else self.players
        self._training: dict[str, deque[Match]] = {p: deque() for p in self.players}
        self._eval: deque[Match] = deque()
        self._reports: queue.Queue[Report | None] = queue.Queue()
        self._eval_wanted = False
        self._eval_retry_s = eval_retry_s
        self._eval_blocked_until = 0.0
        # Prefetching starts with the first request: the learner registers its player
        # with the league only once it is up.
        self._active = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.reported = 0
        self._thread = threading.Thread(target=self._loop, name="league-link", daemon=True)
        self._thread.start()

    # -- the rollout loop's side --------------------------------------------------
    def training_match(self, player: str | None = None) -> Match:
        """A training match for `player` (default: the first lineage)."""
        self._raise_if_failed()
        self._active = True
        player = player or self.player
        try:
            match = self._training[player].popleft()
        except IndexError:  # cold start: ask directly
            match = self.client.sample_opponent(player, self._opponents[player])
        self._wake.set()
        return match

    def eval_match(self) -> Match | None:
        """A prefetched eval match, or None when none is ready (the game then trains)."""
        self._raise_if_failed()
        self._eval_wanted = True
        try:
            match = self._eval.popleft()
        except IndexError:
            match = None
        self._wake.set()
        return match

    def report(self, report: Report) -> None:
        self._raise_if_failed()
        self._reports.put(report)
        self._wake.set()

    def close(self, timeout_s: float = 30.0) -> None:
        """Sends every queued result, then stops the thread."""
        self._reports.put(None)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._raise_if_failed()

    # -- the background thread ----------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"league link failed: {self._error}") from self._error

    def _send_reports(self) -> bool:
        """Sends queued reports; False once the closing sentinel was seen."""
        while True:
            try:
                item = self._reports.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            self.client.report_result(
                item.match_id,
                item.player_a,
                item.player_b,
                item.outcome,
                a_version=item.a_version,
                kind=item.kind,
                steps=item.steps,
            )
            self.reported += 1

    def _refill(self) -> None:
        for player, queue_ in self._training.items():
            while len(queue_) < self.prefetch and not self._stop.is_set():
                queue_.append(self.client.sample_opponent(player, self._opponents[player]))
        now = time.monotonic()
        if self._eval_wanted and now >= self._eval_blocked_until:
            try:
                while len(self._eval) < max(1, self.prefetch // 4):
                    self._eval.append(self.client.sample_eval_match(*self._eval_lineages))
            except LeagueError as err:
                if err.code != "FAILED_PRECONDITION":
                    raise
                self._eval_blocked_until = now + self._eval_retry_s  # < 2 frozen players

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(0.2)
                self._wake.clear()
                if not self._send_reports():
                    return
                if self._active and not self._stop.is_set():
                    self._refill()
        except BaseException as exc:  # surfaced to the rollout loop on its next call
            log.error("league link stopped: %s", exc)
            self._error = exc
