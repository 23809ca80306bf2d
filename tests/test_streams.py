"""Trajectory stream on a real Redis: accounting, back-pressure, reclaiming, races."""

from __future__ import annotations

import threading

import pytest
import redis

from transport.redis import RedisEndpoint
from transport.streams import BackPressureTimeout, TrajectoryStream, every_chunk_accounted_for


@pytest.fixture
def stream(redis_client: redis.Redis) -> TrajectoryStream:
    s = TrajectoryStream(redis_client, "job1", max_length=10)
    s.ensure_group()
    s.ensure_group()  # idempotent: BUSYGROUP is ignored
    return s


def test_add_read_ack_accounting(stream: TrajectoryStream) -> None:
    payloads = [f"chunk-{i}".encode() for i in range(5)]
    ids = stream.add(payloads)
    assert len(ids) == 5 and len(set(ids)) == 5
    got = stream.read("learner-0", count=3, block_ms=0)
    assert [data for _, data in got] == payloads[:3]
    assert stream.stats()["pending"] == 3
    rest = stream.read("learner-0", count=10, block_ms=10)
    assert [data for _, data in rest] == payloads[3:]
    assert stream.read("learner-0", count=10, block_ms=0) == []

    assert stream.ack([got[0][0], got[1][0]], "consumed", steps_per_id=[7, 9]) == 2
    assert stream.ack([got[2][0]], "dropped_lag") == 1
    assert stream.ack([got[0][0]], "consumed", steps_per_id=[7]) == 0  # already settled
    stats = stream.stats()
    assert stats["chunks_added"] == 5
    assert stats["chunks_consumed"] == 2 and stats["steps_consumed"] == 16
    assert stats["chunks_dropped_lag"] == 1
    assert stats["length"] == 2 and stats["pending"] == 2
    assert every_chunk_accounted_for(stats)


def test_stats_of_a_fresh_job(redis_client: redis.Redis) -> None:
    stats = TrajectoryStream(redis_client, "never-used").stats()
    assert stats["length"] == 0 and stats["pending"] == 0 and stats["chunks_added"] == 0


def test_ack_argument_checks(stream: TrajectoryStream) -> None:
    assert stream.ack([], "consumed") == 0
    with pytest.raises(ValueError, match="outcome"):
        stream.ack(["0-1"], "eaten")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only applies"):
        stream.ack(["0-1"], "rejected", steps_per_id=[1])
    with pytest.raises(ValueError, match="2 step counts for 1 ids"):
        stream.ack(["0-1"], "consumed", steps_per_id=[1, 2])


def test_back_pressure_blocks_until_the_learner_acks(stream: TrajectoryStream) -> None:
    stream.add([b"x"] * 9)
    with pytest.raises(ValueError, match="never fit"):
        stream.add([b"x"] * 11)
    with pytest.raises(BackPressureTimeout, match="stayed full"):
        stream.add([b"y", b"y"], timeout_s=0.05)
    assert stream.stats()["length"] == 9  # nothing trimmed, nothing half-added

    added = threading.Event()
    errors: list[BaseException] = []

    def actor() -> None:
        try:
            stream.add([b"y", b"y"], timeout_s=30)
            added.set()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=actor)
    thread.start()
    assert not added.wait(0.3)  # still blocked: 9 + 2 > 10
    entries = stream.read("learner", count=1, block_ms=0)
    stream.ack([entries[0][0]], "consumed", steps_per_id=[1])
    assert added.wait(10), errors
    thread.join(10)
    stats = stream.stats()
    assert (
        stats["length"] == 10 and stats["chunks_added"] == 11 and every_chunk_accounted_for(stats)
    )


def test_should_stop_ends_the_wait_without_adding(stream: TrajectoryStream) -> None:
    stream.add([b"x"] * 10)
    stop = threading.Event()
    result: list[list[str]] = []
    thread = threading.Thread(
        target=lambda: result.append(stream.add([b"y"], should_stop=stop.is_set))
    )
    thread.start()
    stop.set()
    thread.join(10)
    assert result == [[]] and stream.stats()["chunks_added"] == 10


def test_claim_from_a_dead_consumer(stream: TrajectoryStream) -> None:
    stream.add([b"a", b"b", b"c"])
    taken = stream.read("dead-learner", count=3, block_ms=0)
    assert len(taken) == 3
    assert stream.claim_stale("live", min_idle_ms=60_000) == []  # not idle long enough
    claimed = stream.claim_stale("live", min_idle_ms=0, count=2)
    assert claimed == taken[:2]
    # min_idle_ms=0 takes every pending entry, the ones "live" already holds included.
    claimed = stream.claim_stale("live", min_idle_ms=0)
    assert sorted(claimed) == sorted(taken)
    # The dead consumer's late ack of a reclaimed entry is still counted exactly once.
    assert stream.ack([taken[0][0]], "consumed", steps_per_id=[5]) == 1
    assert stream.ack([eid for eid, _ in claimed], "consumed", steps_per_id=[5, 5, 5]) == 2
    stats = stream.stats()
    assert stats["chunks_consumed"] == 3 and stats["steps_consumed"] == 15
    assert stats["length"] == 0 and stats["pending"] == 0 and every_chunk_accounted_for(stats)


def test_claim_skips_entries_deleted_meanwhile(
    stream: TrajectoryStream, redis_client: redis.Redis
) -> None:
    stream.add([b"a", b"b"])
    taken = stream.read("dead-learner", count=2, block_ms=0)
    redis_client.xdel(stream.key, taken[0][0])  # removed behind the group's back
    claimed = stream.claim_stale("live", min_idle_ms=0)
    assert claimed == taken[1:]
    assert stream.stats()["pending"] == 1  # the vanished id no longer haunts the PEL
    assert stream.stats()["chunks_consumed"] == 0


def test_racing_acks_are_counted_once(
    redis_server: RedisEndpoint, redis_client: redis.Redis
) -> None:
    big = TrajectoryStream(redis_client, "race", max_length=1000)
    big.ensure_group()
    big.add([b"z"] * 200)
    ids = [eid for eid, _ in big.read("first", count=200, block_ms=0)]
    big.claim_stale("second", min_idle_ms=0, count=100)  # both now believe they hold some
    totals: list[int] = []
    barrier = threading.Barrier(4)

    def consumer(outcome: str) -> None:
        client = redis_server.client()
        mine = TrajectoryStream(client, "race", max_length=1000)
        barrier.wait()
        totals.append(mine.ack(ids, outcome, None))  # type: ignore[arg-type]
        client.close()

    threads = [
        threading.Thread(target=consumer, args=(o,))
        for o in ("consumed", "consumed", "dropped_lag", "rejected")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sum(totals) == 200
    stats = big.stats()
    settled = stats["chunks_consumed"] + stats["chunks_dropped_lag"] + stats["chunks_rejected"]
    assert (
        settled == 200
        and stats["length"] == 0
        and stats["pending"] == 0
        and every_chunk_accounted_for(stats)
    )


def test_dead_letters_are_kept(stream: TrajectoryStream) -> None:
    stream.add([b"good", b"\x00bad payload"])
    (good_id, _), (bad_id, bad) = stream.read("learner", count=2, block_ms=0)
    assert stream.dead_letter(bad_id, bad, "chunk is not valid\nsafetensors")
    assert not stream.dead_letter(bad_id, bad, "again")  # already settled: not stored twice
    stream.ack([good_id], "consumed", steps_per_id=[1])
    ((_, payload, reason, original),) = stream.dead_letters()
    assert payload == bad and reason == "chunk is not valid safetensors" and original == bad_id
    stats = stream.stats()
    assert stats["dead_letters"] == 1 and stats["chunks_rejected"] == 1
    assert stats["length"] == 0 and every_chunk_accounted_for(stats)


def test_read_recreates_a_vanished_group(
    stream: TrajectoryStream, redis_client: redis.Redis
) -> None:
    redis_client.flushdb()  # e.g. a fresh Redis without the old data
    assert stream.read("learner", count=5, block_ms=0) == []
    stream.add([b"a"])
    assert [d for _, d in stream.read("learner", count=5, block_ms=0)] == [b"a"]


def test_rejects_decoding_clients(redis_server: RedisEndpoint) -> None:
    client = redis_server.client(decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        TrajectoryStream(client, "job1")
    with pytest.raises(ValueError, match="without ':'"):
        TrajectoryStream(redis_server.client(), "a:b")


def test_resp3_client_and_fresh_stream(redis_server: RedisEndpoint) -> None:
    client = redis.Redis(
        redis_server.host, redis_server.port, password=redis_server.password, protocol=3
    )
    fresh = TrajectoryStream(client, "resp3-job")
    assert fresh.claim_stale("learner", min_idle_ms=0) == []  # no group yet: nothing pending
    fresh.add([b"a", b"b"])
    assert [d for _, d in fresh.read("learner", count=5, block_ms=0)] == [b"a", b"b"]
    client.close()
