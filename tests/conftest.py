"""Shared fixtures: one real embedded Redis for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from transport.redis import EmbeddedRedis, RedisEndpoint


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisEndpoint]:
    """A password-protected, AOF-backed redis-server shared by every test."""
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as endpoint:
        yield endpoint


@pytest.fixture
def redis_client(redis_server: RedisEndpoint) -> Iterator[redis.Redis]:
    """A binary client to an empty database (flushed before each test)."""
    client = redis_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.close()
