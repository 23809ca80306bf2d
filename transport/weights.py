"""Versioned weight store: safetensors blobs under `weights:{job}:{player}:{version}`.

Versions start at 1 and only grow, also across learner restarts (see
`ensure_version_at_least`). The newest `keep_versions` are kept, plus any pinned
version (league snapshots). Each publish is announced on the channel `weights:{job}`
as "{player}:{version}"; readers also poll, so a missed message only costs latency.
"""

from __future__ import annotations

import time

import redis

from transport.redis import check_key_part, require_binary_client

# One script per change so a version number, its bytes, the keep window and the
# announcement can never disagree, whatever runs concurrently.
_PUBLISH = """
local latest = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
local v = math.max(latest, floor) + 1
if ARGV[6] ~= '' and tonumber(ARGV[6]) ~= v then
  return redis.error_reply('VERSIONCONFLICT next version is ' .. v)
end
redis.call('SET', KEYS[1], v)
redis.call('SET', ARGV[1] .. v, ARGV[2])
redis.call('ZADD', KEYS[3], v, v)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', v - tonumber(ARGV[3]))) do
  if redis.call('SISMEMBER', KEYS[2], old) == 0 then redis.call('DEL', ARGV[1] .. old) end
  redis.call('ZREM', KEYS[3], old)
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. ':' .. v)
return v
"""

_FLOOR = """
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local want = tonumber(ARGV[1])
if want > floor then
  redis.call('SET', KEYS[2], want)
  floor = want
end
return math.max(floor, tonumber(redis.call('GET', KEYS[1]) or '0'))
"""

_GET_LATEST = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('GET', ARGV[1] .. v)}
"""

_PIN = """
if redis.call('EXISTS', ARGV[1] .. ARGV[2]) == 0 then return 0 end
redis.call('SADD', KEYS[1], ARGV[2])
return 1
"""

# A version unpinned after it left the keep window has no publish left to delete it.
_UNPIN = """
redis.call('SREM', KEYS[1], ARGV[2])
local latest = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) <= latest - tonumber(ARGV[3]) then
  redis.call('DEL', ARGV[1] .. ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
end
return 1
"""


class VersionConflict(RuntimeError):
    """publish(expected_version=...) found that a different version comes next."""


class WeightStore:
    """Weights of every player of one job. Keys per player: `...:{version}` (bytes),
    `...:latest` (newest published), `...:floor` (restart floor), `...:pinned` (set),
    `...:versions` (sorted set of stored versions still subject to the keep window)."""

    def __init__(self, client: redis.Redis, job: str, keep_versions: int = 16) -> None:
        if keep_versions < 1:
            raise ValueError(f"keep_versions must be >= 1, got {keep_versions}")
        self.client = require_binary_client(client)
        self.job = check_key_part(job, "job")
        self.keep_versions = keep_versions
        self.channel = f"weights:{job}"
        self._publish = client.register_script(_PUBLISH)
        self._floor = client.register_script(_FLOOR)
        self._get_latest = client.register_script(_GET_LATEST)
        self._pin = client.register_script(_PIN)
        self._unpin = client.register_script(_UNPIN)

    def _prefix(self, player: str) -> str:
        return f"weights:{self.job}:{check_key_part(player, 'player')}:"

    def _key(self, player: str, suffix: str | int) -> str:
        return f"{self._prefix(player)}{suffix}"

    def publish(self, player: str, data: bytes, expected_version: int | None = None) -> int:
        """Store `data` as the next version of `player`, drop the version leaving the
        keep window (unless pinned), announce it; returns the new version.

        To embed the version in the payload (encode_weights), encode with
        `next_version(player)` and pass it as `expected_version`: if another
        publisher got there first this raises VersionConflict and stores nothing."""
        keys = [
            self._key(player, "latest"),
            self._key(player, "pinned"),
            self._key(player, "versions"),
            self._key(player, "floor"),
        ]
        args = [
            self._prefix(player),
            data,
            self.keep_versions,
            self.channel,
            player,
            "" if expected_version is None else str(int(expected_version)),
        ]
        try:
            return int(self._publish(keys=keys, args=args))
        except redis.ResponseError as exc:
            if "VERSIONCONFLICT" in str(exc):
                raise VersionConflict(
                    f"{player}: expected to publish version {expected_version}, "
                    f"{str(exc).split('VERSIONCONFLICT ')[-1]}"
                ) from None
            raise

    def ensure_version_at_least(self, player: str, version: int) -> int:
        """Make every later publish of `player` get a version > `version` (a learner
        resuming from a checkpoint). Never lowers anything; returns the current
        floor, i.e. next_version(player) - 1."""
        keys = [self._key(player, "latest"), self._key(player, "floor")]
        return int(self._floor(keys=keys, args=[max(0, int(version))]))

    def next_version(self, player: str) -> int:
        """The version the next publish will get, barring a concurrent publisher."""
        latest, floor = self.client.mget(self._key(player, "latest"), self._key(player, "floor"))
        return max(int(latest or 0), int(floor or 0)) + 1

    def latest_version(self, player: str) -> int:
        """Newest published version, 0 when none (a floor alone does not count)."""
        value = self.client.get(self._key(player, "latest"))
        return int(value) if value is not None else 0

    def get(self, player: str, version: int) -> bytes | None:
        value = self.client.get(self._key(player, int(version)))
        return bytes(value) if value is not None else None

    def get_latest(self, player: str) -> tuple[int, bytes] | None:
        """(version, bytes) of the newest version, read atomically; None before the
        first publish."""
        reply = self._get_latest(keys=[self._key(player, "latest")], args=[self._prefix(player)])
        if not reply or reply[1] is None:
            return None
        return int(reply[0]), bytes(reply[1])

    def pin(self, player: str, version: int) -> None:
        """Keep `version` beyond the keep window until unpinned."""
        found = self._pin(
            keys=[self._key(player, "pinned")], args=[self._prefix(player), int(version)]
        )
        if not found:
            raise LookupError(f"weights of {player!r} version {version} are not stored (too old?)")

    def unpin(self, player: str, version: int) -> None:
        keys = [
            self._key(player, "pinned"),
            self._key(player, "latest"),
            self._key(player, "versions"),
        ]
        self._unpin(keys=keys, args=[self._prefix(player), int(version), self.keep_versions])

    def pinned(self, player: str) -> set[int]:
        return {int(v) for v in self.client.smembers(self._key(player, "pinned"))}

    def wait_for_version(self, player: str, min_version: int, timeout_s: float) -> int:
        """Block until `player` has a published version >= `min_version`; returns the
        latest version. Raises TimeoutError after `timeout_s`."""
        latest = self.latest_version(player)
        if latest >= min_version:
            return latest
        deadline = time.monotonic() + timeout_s
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
            while True:
                # Re-read after subscribing (closes the race with a publish just
                # before) and after every wake-up: that is also the polling fallback.
                latest = self.latest_version(player)
                if latest >= min_version:
                    return latest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no weights of {player!r} at version >= {min_version} after "
                        f"{timeout_s:.1f} s (latest is {latest})"
                    )
                pubsub.get_message(timeout=min(remaining, 1.0))
        finally:
            pubsub.close()
