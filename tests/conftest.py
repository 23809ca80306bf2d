"""Shared fixtures: one real embedded Redis for the whole session, and a real league
service per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from core.config import LeagueSettings
from league.client import LeagueClient
from league.server import LeagueServer
from transport.redis import EmbeddedRedis, RedisEndpoint

LEAGUE_TOKEN = "test-token"


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


@pytest.fixture
def league(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeagueClient]:
    """A client of a real league server (its database in tmp_path); `@pytest.mark.
    parametrize("league", [f], indirect=True)` sets its self-play fraction (default 0.5)."""
    fraction = getattr(request, "param", 0.5)
    settings = LeagueSettings(self_play_fraction=fraction, seed=0)
    server = LeagueServer(tmp_path / "league.db", token=LEAGUE_TOKEN, settings=settings)
    server.start()
    client = LeagueClient(server.address, LEAGUE_TOKEN)
    yield client
    client.close()
    server.stop(0)
