"""Versioned weight store on a real Redis."""

from __future__ import annotations

import threading

import pytest
import redis
import torch

from core.codec import decode_weights, encode_weights
from transport.weights import VersionConflict, WeightStore


@pytest.fixture
def store(redis_client: redis.Redis) -> WeightStore:
    return WeightStore(redis_client, "job1", keep_versions=3)


def test_versions_start_at_one_and_grow(store: WeightStore) -> None:
    assert store.latest_version("main") == 0 and store.get_latest("main") is None
    assert [store.publish("main", f"w{i}".encode()) for i in range(4)] == [1, 2, 3, 4]
    assert store.latest_version("main") == 4
    assert store.get_latest("main") == (4, b"w3")
    assert store.get("main", 2) == b"w1"
    # Players are independent.
    assert store.publish("exploiter", b"e") == 1 and store.latest_version("main") == 4


def test_keep_window_deletes_old_unpinned_versions(store: WeightStore) -> None:
    for i in range(1, 3):
        store.publish("main", f"w{i}".encode())
    store.pin("main", 1)
    for i in range(3, 8):
        store.publish("main", f"w{i}".encode())
    stored = {v for v in range(1, 8) if store.get("main", v) is not None}
    assert stored == {1, 5, 6, 7}  # newest 3 plus the pinned snapshot
    assert store.pinned("main") == {1}
    with pytest.raises(LookupError, match="not stored"):
        store.pin("main", 2)
    store.unpin("main", 1)  # outside the window: goes at once
    assert store.get("main", 1) is None
    store.pin("main", 6)
    store.unpin("main", 6)  # inside the window: kept until it falls out
    assert store.get("main", 6) == b"w6"
    for i in range(8, 11):
        store.publish("main", f"w{i}".encode())
    assert {v for v in range(1, 11) if store.get("main", v) is not None} == {8, 9, 10}


def test_pinned_versions_survive_many_publishes(store: WeightStore) -> None:
    for i in range(1, 21):
        store.publish("main", b"w%d" % i)
        if i % 5 == 0:
            store.pin("main", i)
    assert store.pinned("main") == {5, 10, 15, 20}
    for v in (5, 10, 15):
        assert store.get("main", v) == b"w%d" % v
    assert store.get("main", 16) is None and store.get("main", 18) == b"w18"


def test_floor_after_a_learner_restart(redis_client: redis.Redis) -> None:
    # The Redis data is gone but the learner resumes from a checkpoint at version 41.
    store = WeightStore(redis_client, "job1")
    assert store.ensure_version_at_least("main", 41) == 41
    assert store.latest_version("main") == 0  # a floor alone is nothing to fetch
    assert store.get_latest("main") is None
    assert store.next_version("main") == 42
    assert store.publish("main", b"resumed") == 42
    assert store.ensure_version_at_least("main", 10) == 42  # never lowers
    assert store.publish("main", b"next") == 43
    # A restarted learner whose checkpoint is older than what Redis kept.
    again = WeightStore(redis_client, "job1")
    assert again.ensure_version_at_least("main", 42) == 43
    assert again.publish("main", b"after") == 44


def test_expected_version_keeps_payload_and_key_in_step(store: WeightStore) -> None:
    state = {"w": torch.ones(2)}
    version = store.next_version("main")
    assert store.publish("main", encode_weights(state, version), expected_version=version) == 1
    got = store.get_latest("main")
    assert got is not None and decode_weights(got[1])[1] == got[0] == 1
    with pytest.raises(VersionConflict, match="next version is 2"):
        store.publish("main", b"stale", expected_version=1)
    assert store.latest_version("main") == 1


def test_wait_for_version(store: WeightStore) -> None:
    with pytest.raises(TimeoutError, match="version >= 1"):
        store.wait_for_version("main", 1, timeout_s=0.05)
    store.publish("main", b"a")
    assert store.wait_for_version("main", 1, timeout_s=0) == 1

    waiting = threading.Event()
    result: list[int] = []

    def actor() -> None:
        waiting.set()
        result.append(store.wait_for_version("main", 3, timeout_s=30))

    thread = threading.Thread(target=actor)
    thread.start()
    waiting.wait(5)
    store.publish("main", b"b")
    store.publish("other", b"x")  # a notice for someone else does not wake it wrongly
    store.publish("main", b"c")
    thread.join(10)
    assert result == [3]


def test_pubsub_announces_each_version(store: WeightStore, redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("weights:job1")
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    store.publish("main", b"a")
    message = pubsub.get_message(timeout=5)
    assert message is not None and message["data"] == b"main:1"
    pubsub.close()


def test_names_are_checked(store: WeightStore) -> None:
    with pytest.raises(ValueError, match="player"):
        store.publish("a:b", b"x")
