"""Keeps the rollout loop from waiting on league round trips.

A game needs a match when it starts and reports a result when it ends: two gRPC
calls per game, which stalled the rollout loop for most of its time on short games
like connect_four. Here background threads sample matches ahead of need and send
results from a queue; the loop only touches in-memory deques. Matches and results have
a thread each: a results call can take 0.3-0.7 s while the league writes them, and
behind it the prefetched matches ran out (a third of a connect_four actor's games
started on a direct call). Both go in
batches, one call for every match missing from the prefetch (SampleOpponents) and
one for every result queued (ReportResults): one call per game still saturated the
thread at ~150 connect_four games/s and left the loop waiting on cold starts.
Results are idempotent by match id, so a batch retried after a league restart
counts each result once.

An unreachable league (restarting, or down longer than the client's own retry
window) loses nothing: the result being sent stays at the head of the queue and is
retried with backoff, and a failed prefetch is simply tried again later. Only a
non-transient error (a rejected request: a bug) stops the link. `counts` says what
became of every result; the actor's stats carry it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.league_protocol import ActorLeague, LeagueError, Match
from core.league_protocol import ResultReport as Report

# Most results one ReportResults call carries, and matches one SampleOpponents call
# asks for (the service takes up to 1024 of each).
REPORT_BATCH = 256
MATCH_BATCH = 1024

log = logging.getLogger(__name__)

# Status codes that say "not now" rather than "never": the league is down, restarting
# or slow. Retrying is safe because reports are idempotent by match id.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
_FIRST_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 2.0


class _Backoff:
    """Retry pacing for one of the link's threads while the league is unreachable."""

    def __init__(self, doing: str) -> None:
        self.doing = doing
        self._retry_at = 0.0  # monotonic time before which the league is left alone
        self._delay_s = _FIRST_BACKOFF_S
        self._down_since: float | None = None

    def waiting(self) -> bool:
        return time.monotonic() < self._retry_at

    def failed(self, err: LeagueError) -> None:
        """Re-raises a real error; for a transient one, backs off before the next try."""
        if err.code not in TRANSIENT_CODES:
            raise err
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
            # The error names the address and the status, never the token.
            log.warning("league unreachable while %s, retrying with backoff: %s", self.doing, err)
        self._retry_at = now + self._delay_s
        self._delay_s = min(self._delay_s * 2.0, _MAX_BACKOFF_S)

    def succeeded(self, detail: str = "") -> None:
        if self._down_since is not None:
            log.info(
                "league reachable again after %.1fs (%s)%s",
                time.monotonic() - self._down_since,
                self.doing,
                detail,
            )
        self._down_since = None
        self._delay_s = _FIRST_BACKOFF_S


@dataclass
class ReportCounts:
    """What became of the results handed to a link (final once `close` returned)."""

    queued: int = 0  # results handed to report()
    acked: int = 0  # acknowledged by the league: applied + duplicates
    applied: int = 0  # recorded by this report
    # Already recorded: a resend whose first attempt got through before the
    # connection dropped (or a reused match id).
    duplicates: int = 0
    deferred: int = 0  # sends put off because the league was unreachable
    unsent: int = 0  # still queued when close() gave up waiting for the league
    # Calls (results and matches) the league client retried after a transient failure;
    # set by close().
    client_retries: int = 0


class LeagueLink:
    """`players`: the learning lineages of the job. Single-team games (`teams` False): every
    lineage (the main agent, exploiters) gets its training opponents as the league's
    matchmaker picks them for its role. Team games (two lineages): each one's opponents
    come from the other's lineage, and eval matches put a frozen player of the first
    against one of the second."""

    def __init__(
        self,
        client: ActorLeague,
        players: str | Sequence[str],
        prefetch: int,
        eval_retry_s: float = 5.0,
        teams: bool = False,
    ):
        self.players = (players,) if isinstance(players, str) else tuple(players)
        if not self.players or (teams and len(self.players) != 2):
            raise ValueError(f"a league link serves two teams or 1+ lineages, got {self.players}")
        # `prefetch`: how many games may start at once (the actor's games). Twice that
        # is kept ready: short games (connect_four) end in bursts, and with exactly one
        # vector's worth a third of the starts found the deque empty and waited ~2 ms
        # on a direct call.
        self.client, self.prefetch = client, 2 * max(1, prefetch)
        # The matches thread is woken once a deque is down to half, and the results thread
        # once half a vector's worth is queued (else its own 0.2 s timer sends them): woken
        # per game, it made one SampleOpponents and one ReportResults call of ~1 item per
        # game, ~0.7 ms of the league's CPU per connect_four game (BENCHMARKS.md).
        self._refill_below = self.prefetch // 2
        self._report_at = max(1, prefetch // 2)
        self._eval_depth = max(1, prefetch // 4)
        self.cold_starts = 0  # training matches asked for directly (the deque was empty)
        self.player = self.players[0]
        # player -> opponent lineage ("" = as the league decides for its role)
        self._opponents = (
            {self.players[0]: self.players[1], self.players[1]: self.players[0]}
            if teams
            else dict.fromkeys(self.players, "")
        )
        self._eval_lineages = self.players if teams else ("", "")
        self._training: dict[str, deque[Match]] = {p: deque() for p in self.players}
        self._eval: deque[Match] = deque()
        self._reports: queue.Queue[Report | None] = queue.Queue()
        self._eval_wanted = False
        self._eval_retry_s = eval_retry_s
        self._eval_blocked_until = 0.0
        # Prefetching starts with the first request: the learner registers its player
        # with the league only once it is up.
        self._active = False
        self._wake_reports = threading.Event()
        self._wake_matches = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.counts = ReportCounts()
        # Taken off the queue, not yet acknowledged; None: the closing sentinel came.
        self._sending: list[Report] = []
        self._closing = False
        self._report_backoff = _Backoff("reporting results")
        self._match_backoff = _Backoff("prefetching matches")
        self._abandon = threading.Event()  # close() gave up: stop retrying
        self._thread = threading.Thread(
            target=self._guarded, args=(self._report_loop,), name="league-results", daemon=True
        )
        self._match_thread = threading.Thread(
            target=self._guarded, args=(self._match_loop,), name="league-matches", daemon=True
        )
        self._thread.start()
        self._match_thread.start()

    # -- the rollout loop's side --------------------------------------------------
    def training_match(self, player: str | None = None) -> Match:
        """A training match for `player` (default: the first lineage)."""
        self._raise_if_failed()
        self._active = True
        player = player or self.player
        try:
            match = self._training[player].popleft()
        except IndexError:  # cold start: ask directly
            self.cold_starts += 1
            match = self.client.sample_opponent(player, self._opponents[player])
        if len(self._training[player]) <= self._refill_below:
            self._wake_matches.set()
        return match

    def eval_match(self) -> Match | None:
        """A prefetched eval match, or None when none is ready (the game then trains)."""
        self._raise_if_failed()
        self._eval_wanted = True
        try:
            match = self._eval.popleft()
        except IndexError:
            match = None
        if len(self._eval) <= self._eval_depth // 2:
            self._wake_matches.set()
        return match

    @property
    def reported(self) -> int:
        """Results the league acknowledged so far."""
        return self.counts.acked

    def report(self, report: Report) -> None:
        self._raise_if_failed()
        self.counts.queued += 1
        self._reports.put(report)
        if self._reports.qsize() >= self._report_at:
            self._wake_reports.set()

    def close(self, timeout_s: float = 30.0) -> None:
        """Sends every queued result (retrying while the league is unreachable), then
        stops the thread; after `timeout_s` the results still queued are given up and
        counted as `counts.unsent`."""
        self._reports.put(None)
        self._stop.set()
        self._wake_reports.set()
        self._wake_matches.set()
        self._thread.join(timeout_s)
        gave_up = self._thread.is_alive()
        if gave_up:
            self._abandon.set()
            self._wake_reports.set()
        # Prefetching stops at its next wake-up; a call in flight is left to its timeout
        # (the thread is a daemon and holds nothing that must be saved).
        self._match_thread.join(1.0)
        self.counts.unsent = self.counts.queued - self.counts.acked
        self.counts.client_retries = self.client.retries
        if self.counts.unsent:
            # Not raised when the league is merely unreachable: the caller is shutting
            # down and must still stop cleanly (the learner's final checkpoint comes
            # after the actors); counted and logged, so the loss shows in the stats.
            log.error(
                "%d results were not sent to the league (%s)",
                self.counts.unsent,
                "unreachable at shutdown" if gave_up else "the link had failed",
            )
        log.info(
            "league link closed: %d results queued, %d acknowledged (%d applied, "
            "%d duplicates), %d unsent; %d sends deferred while the league was "
            "unreachable, %d client retries, %d matches not prefetched in time",
            self.counts.queued,
            self.counts.acked,
            self.counts.applied,
            self.counts.duplicates,
            self.counts.unsent,
            self.counts.deferred,
            self.client.retries,
            self.cold_starts,
        )
        self._raise_if_failed()

    # -- the background thread ----------------------------------------------------
    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"league link failed: {self._error}") from self._error

    def _send_reports(self) -> bool:
        """Sends queued reports in order, in batches; False once the closing sentinel was
        seen and everything before it is acknowledged.

        Reports leave `_sending` only once acknowledged, so a batch that failed with the
        league down is the first one sent when it is back.
        """
        while not self._abandon.is_set():
            while not self._closing and len(self._sending) < REPORT_BATCH:
                try:
                    item = self._reports.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._closing = True
                else:
                    self._sending.append(item)
            if not self._sending:
                return not self._closing
            try:
                applied = self.client.report_results(self._sending)
            except LeagueError as err:
                self._report_backoff.failed(err)
                self.counts.deferred += 1
                return True
            self._sending = []
            self.counts.acked += len(applied)
            self.counts.applied += sum(applied)
            self.counts.duplicates += len(applied) - sum(applied)
            self._report_backoff.succeeded(f"; {self._reports.qsize()} results waiting")
            if not self._closing and self._reports.qsize() < self._report_at:
                return True  # the rest goes with the next wake-up or tick, in one call
        return False

    def _refill(self) -> None:
        for player, queue_ in self._training.items():
            missing = min(self.prefetch - len(queue_), MATCH_BATCH)
            if len(queue_) <= self._refill_below and not self._stop.is_set():
                queue_.extend(
                    self.client.sample_opponents(player, missing, self._opponents[player])
                )
        now = time.monotonic()
        if self._eval_wanted and now >= self._eval_blocked_until:
            try:
                while len(self._eval) < self._eval_depth:
                    self._eval.append(self.client.sample_eval_match(*self._eval_lineages))
            except LeagueError as err:
                if err.code != "FAILED_PRECONDITION":
                    raise
                self._eval_blocked_until = now + self._eval_retry_s  # < 2 frozen players

    def _report_loop(self) -> None:
        while not self._abandon.is_set():
            self._wake_reports.wait(0.2)
            self._wake_reports.clear()
            if self._report_backoff.waiting():
                continue  # backing off while the league is unreachable
            if not self._send_reports():
                return

    def _match_loop(self) -> None:
        while not (self._stop.is_set() or self._abandon.is_set()):
            self._wake_matches.wait(0.2)
            self._wake_matches.clear()
            if not self._active or self._match_backoff.waiting() or self._stop.is_set():
                continue
            try:
                self._refill()
            except LeagueError as err:
                # Prefetching is an optimisation: the rollout loop asks directly when
                # the deque runs dry.
                self._match_backoff.failed(err)
            else:
                self._match_backoff.succeeded()

    def _guarded(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except BaseException as exc:  # surfaced to the rollout loop on its next call
            log.error("league link stopped: %s", exc)
            self._error = exc
