"""Registries by name, for what a config names and a floor above core provides: algorithm
configs (core/config.py) and learners (learner/algorithm.py), acting kinds
(actors/policies.py), bots (envs/bots.py), opponent sampling rules (league/sampling.py)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownName(LookupError, ValueError):
    """A name no one registered; the message lists the known ones."""


class Registry(Generic[T]):
    """`what` names the kind of thing in messages ("bot", "opponent sampling", ...)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        """Adds `item` under `name`; registering the same item again is a no-op."""
        if self._items.get(name, item) is not item:
            raise ValueError(f"{self.what} {name!r} is registered already")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        return f"unknown {self.what} {name!r} (known: {', '.join(self.names())})"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)
