"""The trajectory stream of one job: a bounded Redis Stream read by a consumer group.

Every state change that touches the counters is one Lua script, so the books
balance at every instant:

    chunks_added == chunks_consumed + chunks_dropped_lag + chunks_rejected + length

(`length` counts unread and pending entries alike: an entry leaves the stream only
when it is acknowledged). Two consumers racing for the same entry cannot both
count it, because only the one whose XACK removed it from the pending list does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import redis

from transport.redis import check_key_part, require_binary_client

Outcome = Literal["consumed", "dropped_lag", "rejected"]
OUTCOMES: tuple[Outcome, ...] = ("consumed", "dropped_lag", "rejected")
DEAD_LETTER_MAXLEN = 10_000
CHUNK_FIELD = b"chunk"
_MAX_REASON = 1000

# Check the bound and append atomically: many actors may find room at once.
_ADD = """
local n = #ARGV - 1
if redis.call('XLEN', KEYS[1]) + n > tonumber(ARGV[1]) then return false end
local ids = {}
for i = 2, #ARGV do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], '*', 'chunk', ARGV[i])
end
redis.call('HINCRBY', KEYS[2], 'chunks_added', n)
return ids
"""

# Only the caller whose XACK took the id off the pending list deletes and counts it.
_ACK = """
local n = tonumber(ARGV[3])
local acked, steps = 0, 0
for i = 1, n do
  local id = ARGV[3 + i]
  if redis.call('XACK', KEYS[1], ARGV[1], id) == 1 then
    redis.call('XDEL', KEYS[1], id)
    acked = acked + 1
    local s = ARGV[3 + n + i]
    if s then steps = steps + tonumber(s) end
  end
end
if acked > 0 then redis.call('HINCRBY', KEYS[2], ARGV[2], acked) end
if steps > 0 then redis.call('HINCRBY', KEYS[2], 'steps_consumed', steps) end
return acked
"""

_DEAD = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
           'chunk', ARGV[3], 'reason', ARGV[4], 'id', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'chunks_rejected', 1)
redis.call('HINCRBY', KEYS[2], 'dead_letters', 1)
return 1
"""

# JUSTID + XRANGE instead of a plain XAUTOCLAIM: Redis 6.2 answers a deleted entry
# with a bare nil (no id), so we could not tell which pending id to clear. Ids
# whose entry is gone are acked here without counting (whoever deleted them did).
_CLAIM = """
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
                       'COUNT', ARGV[5], 'JUSTID')
local entries, gone = {}, 0
for _, id in ipairs(res[2]) do
  local found = redis.call('XRANGE', KEYS[1], id, id)
  if #found == 0 then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    gone = gone + 1
  else
    entries[#entries + 1] = found[1]
  end
end
return {res[1], entries, gone}
"""


def every_chunk_accounted_for(stats: dict[str, int]) -> bool:
    """The stream's invariant: each chunk ever added was trained on, dropped for lag,
    rejected, or is still in the stream (unread or pending); none counted twice."""
    settled = stats["chunks_consumed"] + stats["chunks_dropped_lag"] + stats["chunks_rejected"]
    return stats["chunks_added"] == settled + stats["length"]


class BackPressureTimeout(TimeoutError):
    """The stream stayed full for the whole timeout: the learner is not keeping up."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _chunk_of(fields: Any) -> bytes:
    # A flat [field, value, ...] list from Lua, or a dict from redis-py's parser.
    if isinstance(fields, dict):
        return bytes(fields.get(CHUNK_FIELD, b""))
    pairs = dict(zip(fields[::2], fields[1::2], strict=True))
    return bytes(pairs.get(CHUNK_FIELD, b""))


class TrajectoryStream:
    """`traj:{job}` (entries with field `chunk`), counters in `stats:{job}`, rejected
    payloads kept in `dead:{job}`."""

    def __init__(
        self, client: redis.Redis, job: str, max_length: int = 2000, group: str = "learners"
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.client = require_binary_client(client)
        self.job = check_key_part(job, "job")
        self.group = check_key_part(group, "consumer group")
        self.max_length = max_length
        self.key = f"traj:{job}"
        self.stats_key = f"stats:{job}"
        self.dead_key = f"dead:{job}"
        self._add = client.register_script(_ADD)
        self._ack = client.register_script(_ACK)
        self._dead = client.register_script(_DEAD)
        self._claim = client.register_script(_CLAIM)

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def add(
        self,
        chunks: Sequence[bytes],
        timeout_s: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[str]:
        """Append `chunks` in one round trip once the stream has room for all of them.

        While it is full, waits (2 ms doubling to 100 ms), never trims. Raises
        BackPressureTimeout after `timeout_s`; returns [] (nothing added) as soon as
        `should_stop()` is true while waiting."""
        if not chunks:
            return []
        if len(chunks) > self.max_length:
            raise ValueError(f"{len(chunks)} chunks can never fit a stream of {self.max_length}")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = 0.002
        while True:
            ids = self._add(keys=[self.key, self.stats_key], args=[self.max_length, *chunks])
            if ids is not None:
                return [_text(i) for i in ids]
            # Full: poll the cheap XLEN rather than resending the payload each time.
            while True:
                if should_stop is not None and should_stop():
                    return []
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise BackPressureTimeout(
                        f"stream {self.key} stayed full ({self.max_length} chunks) for "
                        f"{timeout_s:.1f} s: the learner is not keeping up"
                    )
                time.sleep(delay if deadline is None else min(delay, deadline - now))
                delay = min(delay * 2, 0.1)
                if self.client.xlen(self.key) + len(chunks) <= self.max_length:
                    break

    def read(self, consumer: str, count: int, block_ms: int) -> list[tuple[str, bytes]]:
        """New entries for `consumer` (XREADGROUP `>`). block_ms <= 0 does not block:
        Redis would read BLOCK 0 as 'forever', which no caller that must stop wants."""
        block = block_ms if block_ms > 0 else None
        try:
            reply = self.client.xreadgroup(
                self.group, consumer, {self.key: ">"}, count=count, block=block
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group vanished (fresh or flushed Redis): recreate, read again.
            self.ensure_group()
            reply = self.client.xreadgroup(
                self.group, consumer, {self.key: ">"}, count=count, block=block
            )
        if not reply:
            return []
        out: list[tuple[str, bytes]] = []
        for entries in reply.values() if isinstance(reply, dict) else (s[1] for s in reply):
            # Some RESP3 parsers wrap a stream's (id, fields) tuples in one more list.
            if entries and isinstance(entries[0], list):
                entries = [entry for inner in entries for entry in inner]
            out.extend((_text(eid), _chunk_of(fields)) for eid, fields in entries)
        return out

    def claim_stale(
        self, consumer: str, min_idle_ms: int, count: int = 100
    ) -> list[tuple[str, bytes]]:
        """Take over up to `count` entries pending longer than `min_idle_ms` for any
        consumer (e.g. a dead learner), walking the XAUTOCLAIM cursor."""
        out: list[tuple[str, bytes]] = []
        cursor: bytes | str = "0-0"
        while len(out) < count:
            try:
                cursor, entries, _gone = self._claim(
                    keys=[self.key],
                    args=[self.group, consumer, max(0, min_idle_ms), cursor, count - len(out)],
                )
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self.ensure_group()  # no group yet: nothing can be pending
                return out
            out.extend((_text(eid), _chunk_of(fields)) for eid, fields in entries)
            if _text(cursor) == "0-0":
                break
        return out

    def ack(
        self,
        ids: Sequence[str],
        outcome: Outcome,
        steps_per_id: Sequence[int] | None = None,
    ) -> int:
        """Acknowledge and delete `ids`, counting those this call actually acked under
        `chunks_{outcome}`, and their `steps_per_id` under `steps_consumed` (only for
        'consumed'). Returns how many were acked by this call."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        if not ids:
            return 0
        steps: list[int] = []
        if steps_per_id is not None:
            if outcome != "consumed":
                raise ValueError("steps_per_id only applies to outcome 'consumed'")
            if len(steps_per_id) != len(ids):
                raise ValueError(f"{len(steps_per_id)} step counts for {len(ids)} ids")
            steps = [int(s) for s in steps_per_id]
            if min(steps) < 0:
                raise ValueError("step counts must be >= 0")
        args = [self.group, f"chunks_{outcome}", len(ids), *ids, *steps]
        return int(self._ack(keys=[self.key, self.stats_key], args=args))

    def dead_letter(self, entry_id: str, data: bytes, reason: str) -> bool:
        """Move a rejected entry to `dead:{job}` (kept for inspection) and count it as
        rejected. False if another consumer already settled the entry."""
        reason = " ".join(reason.split())[:_MAX_REASON]
        done = self._dead(
            keys=[self.key, self.stats_key, self.dead_key],
            args=[self.group, entry_id, data, reason, DEAD_LETTER_MAXLEN],
        )
        return bool(done)

    def dead_letters(self, count: int = 100) -> list[tuple[str, bytes, str, str]]:
        """The newest dead letters: (dead id, payload, reason, original id)."""
        out = []
        for eid, fields in self.client.xrevrange(self.dead_key, count=count):
            out.append(
                (
                    _text(eid),
                    bytes(fields.get(b"chunk", b"")),
                    _text(fields.get(b"reason", b"")),
                    _text(fields.get(b"id", b"")),
                )
            )
        return out

    def stats(self) -> dict[str, int]:
        """Counters plus `length` (unread + pending) and `pending`, read atomically."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self.stats_key)
        pipe.xlen(self.key)
        pipe.xpending(self.key, self.group)
        counters, length, pending = pipe.execute(raise_on_error=False)
        if isinstance(counters, Exception) or isinstance(length, Exception):
            raise counters if isinstance(counters, Exception) else length
        result = {
            name: 0
            for name in (
                "chunks_added",
                "chunks_consumed",
                "chunks_dropped_lag",
                "chunks_rejected",
                "steps_consumed",
                "dead_letters",
            )
        }
        result.update({_text(k): int(v) for k, v in counters.items()})
        result["length"] = int(length)
        # No group yet (nothing ever read) means nothing pending.
        result["pending"] = 0 if isinstance(pending, Exception) else int(pending["pending"])
        return result
