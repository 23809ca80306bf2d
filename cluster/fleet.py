"""The job's rollout actors as one resizable fleet.

Growing starts actors with fresh indices (so their seeds and actor ids never repeat).
Shrinking never kills: it asks the newest actors to stop, and they drain — finish the
vector step, send every full chunk, report every finished game, close their league link
— before their `run()` returns; only then does the fleet let go of them. A chunk is
therefore either in the stream or was never produced (a partial chunk of an actor that
stops is dropped before it is encoded), and the stream's accounting stays exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class FleetError(RuntimeError):
    """An actor's run ended without being asked to stop."""


@dataclass
class _Member:
    index: int
    actor: Any  # Ray actor handle
    run: Any  # ObjectRef of actor.run()


class ActorFleet:
    """`make_actor(index)` returns a new actor handle (RolloutActor.options(...).remote)."""

    def __init__(self, make_actor: Callable[[int], Any]) -> None:
        self._make = make_actor
        self._next_index = 0
        self.active: list[_Member] = []
        self.draining: list[_Member] = []
        self.finished: list[dict[str, Any]] = []  # stats of actors that drained

    @property
    def size(self) -> int:
        """Actors playing now (draining ones excluded)."""
        return len(self.active)

    def actors(self) -> list[Any]:
        return [m.actor for m in self.active]

    def runs(self) -> list[Any]:
        """The run() refs to wait on: active and draining actors."""
        return [m.run for m in (*self.active, *self.draining)]

    def scale_to(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"actor count must be >= 0, got {n}")
        while len(self.active) < n:
            index = self._next_index
            self._next_index += 1
            actor = self._make(index)
            self.active.append(_Member(index, actor, actor.run.remote()))
        if len(self.active) > n:
            # The newest go first: the oldest have warm caches and the longest history.
            leaving, self.active = self.active[n:], self.active[:n]
            for member in leaving:
                member.actor.stop.remote()
            self.draining.extend(leaving)
            log.info(
                "scaling to %d actors: %d draining (%s)",
                n,
                len(leaving),
                ", ".join(str(m.index) for m in leaving),
            )

    def settle(self, done: list[Any], get: Callable[[Any], dict[str, Any]]) -> None:
        """Handles run() refs that completed: a draining actor's stats are kept (`get`
        raises its remote error, if any); an active actor that ended is an error."""
        for ref in done:
            member = next((m for m in self.draining if m.run == ref), None)
            if member is None:
                if any(m.run == ref for m in self.active):
                    get(ref)  # raises the actor's error if it failed
                    raise FleetError("a rollout actor stopped unexpectedly")
                continue
            self.finished.append(get(ref))
            self.draining.remove(member)
            log.info("actor %d drained and left", member.index)

    def stop_all(self, get: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
        """Stops every actor, waits for all to drain; every actor's final stats."""
        for member in self.active:
            member.actor.stop.remote()
        self.draining.extend(self.active)
        self.active = []
        for member in self.draining:
            self.finished.append(get(member.run))
        self.draining = []
        return self.finished
