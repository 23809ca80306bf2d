"""The networks an actor plays with: the learner's latest weights and a small cache of
frozen league players (snapshots), all built from validated safetensors payloads.

How a network becomes a player is the algorithm's acting kind (config
`AlgorithmConfig.acting`), registered here: the network the published weights fit, the
fast player the rollout workers use and the reference one evaluation uses, and the chunk
fields its decisions record. An actor-critic samples from its policy head and records
the log-probability and value of each decision.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from actors.inference import (
    NoisyDeterministicPolicy,
    QPolicy,
    SquashedGaussianPolicy,
    TorchPolicy,
    inference_policy,
)
from actors.players import Player
from core.codec import decode_weights, weights_spec
from core.config import ModelConfig
from core.nets import (
    DeterministicActor,
    GaussianActor,
    RecurrentGaussianActor,
    build_net,
    build_q_net,
)
from core.players import parse_snapshot_id
from core.registry import Registry
from core.spaces import PolicyShape
from transport.weights import WeightStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActingKind:
    """How published weights act. `fast_player` is what rollout workers run (it may copy
    the weights: made again after each load); `player` is the reference arithmetic."""

    name: str
    build_net: Callable[[ModelConfig, PolicyShape], torch.nn.Module]
    # (net, generator, **exploration) -> player; exploration: the actor's own settings
    # (AlgorithmConfig.actor_exploration: a Q-network's epsilon, ...), none for kinds that
    # explore by sampling alone.
    fast_player: Callable[..., Player]
    player: Callable[[torch.nn.Module, torch.Generator], Player]
    records: frozenset[str]  # chunk fields its decisions fill (core/chunks.py)


ACTING: Registry[ActingKind] = Registry("acting kind")


def register_acting(kind: ActingKind) -> ActingKind:
    return ACTING.register(kind.name, kind)


def acting_kind(name: str) -> ActingKind:
    return ACTING.get(name)


register_acting(
    ActingKind(
        "actor_critic",
        lambda model, shape: build_net(model, shape.input_dim, shape.num_actions, shape.continuous),
        lambda net, generator: inference_policy(net, generator),  # type: ignore[arg-type]
        TorchPolicy,  # type: ignore[arg-type]
        frozenset({"behaviour_logp", "values"}),
    )
)
register_acting(
    ActingKind(
        "squashed_gaussian",
        lambda model, shape: (RecurrentGaussianActor if model.lstm else GaussianActor)(
            model, shape.input_dim, shape.num_actions
        ),
        SquashedGaussianPolicy,  # type: ignore[arg-type]
        SquashedGaussianPolicy,  # type: ignore[arg-type]
        frozenset(),
    )
)
register_acting(
    ActingKind(
        "deterministic_noisy",
        lambda model, shape: DeterministicActor(model, shape.input_dim, shape.num_actions),
        NoisyDeterministicPolicy,  # type: ignore[arg-type]
        NoisyDeterministicPolicy,  # type: ignore[arg-type]
        frozenset(),
    )
)
register_acting(
    ActingKind(
        "epsilon_greedy_q",
        lambda model, shape: build_q_net(model, shape.input_dim, shape.num_actions),
        QPolicy,  # type: ignore[arg-type]
        QPolicy,  # type: ignore[arg-type]
        frozenset(),
    )
)


def snapshot_version(player_id: str, lineage: str) -> int | None:
    """ "main@v50" -> 50 for the given lineage; None for other players."""
    parsed = parse_snapshot_id(player_id)
    return parsed[1] if parsed and parsed[0] == lineage else None


class PolicyPool:
    def __init__(
        self,
        store: WeightStore,
        lineage: str,
        model: ModelConfig,
        obs_dim: int,
        num_actions: int,
        continuous: bool = False,
        cache_size: int = 64,  # frozen nets kept built; reloading one costs ~ms
        acting: str = "actor_critic",
        exploration: Mapping[str, float] | None = None,
        goal_dim: int = 0,
    ):
        """`exploration`: this actor's own settings, its acting kind's player's keyword
        arguments (AlgorithmConfig.actor_exploration); `goal_dim`: goal tasks'
        policies read the observation and the goal (core/spaces.py PolicyShape)."""
        self._store, self.lineage = store, lineage
        self.kind, self.exploration = acting_kind(acting), dict(exploration or {})
        shape = PolicyShape(obs_dim, num_actions, continuous, goal_dim)
        self._make = lambda: self.kind.build_net(model, shape).eval()
        self.learner = self._make()
        self._expected = weights_spec(self.learner.state_dict())
        self.learner_version = 0
        self.learner_meta: dict[str, str] = {}  # the adopted version's (learner.publish)
        self._cache: OrderedDict[int, torch.nn.Module] = OrderedDict()
        self._cache_size = cache_size
        # Inference copies (actors/inference.py), made on first use after each load.
        self._learner_policy: Player | None = None
        self._frozen_policies: dict[int, Player] = {}
        # publish -> adopt delays of recent versions, for latency stats (the first
        # adoption, at start-up, is left out: it measures how late the actor started)
        self.adopt_times_s: deque[float] = deque(maxlen=1000)
        # Versions never acted with: published while an older one was still in use and
        # replaced before the next poll (their delay is not in adopt_times_s).
        self.versions_skipped = 0

    def _load(self, net: torch.nn.Module, data: bytes) -> tuple[int, dict[str, str]]:
        tensors, version, meta = decode_weights(data, self._expected)
        net.load_state_dict(tensors)
        return version, meta

    def refresh_learner(self) -> bool:
        """Adopts a newer learner version if one is published; True if it did."""
        latest = self._store.latest_version(self.lineage)
        if latest <= self.learner_version:
            return False
        got = self._store.get_latest(self.lineage)
        if got is None:
            return False
        version, data = got
        _, meta = self._load(self.learner, data)
        self._learner_policy = None
        if self.learner_version:
            self.versions_skipped += max(0, version - self.learner_version - 1)
        self.learner_version = version
        self.learner_meta = dict(meta)
        published = float(meta.get("published_unix", "nan"))
        if published == published:  # not NaN
            self.adopt_times_s.append(max(0.0, time.time() - published))
        return True

    def wait_for_learner(self, timeout_s: float) -> None:
        self._store.wait_for_version(self.lineage, 1, timeout_s)
        if not self.refresh_learner():
            raise RuntimeError(f"no weights published for {self.lineage!r} within {timeout_s}s")
        self.adopt_times_s.clear()  # start-up, not adoption latency

    def adoption_stats(self) -> dict[str, float | int | None]:
        """Publish -> adopt delays of the last (up to) 1000 versions this pool adopted, in
        ms: count, p50, p99, max, mean; plus versions skipped in total. The delay covers
        the learner's encode and Redis write, the wait for this actor's next weight poll
        (actors.weight_poll_seconds, checked once per vector step) and fetch + load."""
        delays = sorted(self.adopt_times_s)  # a copy: the actor thread keeps appending

        def pct(q: float) -> float | None:
            if not delays:
                return None
            # nearest rank: the smallest delay with at least q of them at or below it
            return round(1000 * delays[max(0, math.ceil(q * len(delays)) - 1)], 2)

        return {
            "count": len(delays),
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "max_ms": round(1000 * delays[-1], 2) if delays else None,
            "mean_ms": round(1000 * sum(delays) / len(delays), 2) if delays else None,
            "versions_skipped": self.versions_skipped,
        }

    def frozen(self, player_id: str) -> torch.nn.Module:
        """The net of a frozen snapshot of this lineage."""
        version = snapshot_version(player_id, self.lineage)
        if version is None:
            raise KeyError(f"unknown league player {player_id!r}")
        net = self._cache.get(version)
        if net is not None:
            self._cache.move_to_end(version)
            return net
        data = self._store.get(self.lineage, version)
        if data is None:
            raise KeyError(f"weights of snapshot {player_id!r} are missing from Redis")
        net = self._make()
        self._load(net, data)
        self._cache[version] = net
        if len(self._cache) > self._cache_size:
            evicted, _ = self._cache.popitem(last=False)
            self._frozen_policies.pop(evicted, None)
        return net

    def learner_policy(self, generator: torch.Generator) -> Player:
        """The learner's latest weights as a player (the acting kind's fast one)."""
        if self._learner_policy is None:
            self._learner_policy = self.kind.fast_player(
                self.learner, generator, **self.exploration
            )
        return self._learner_policy

    def frozen_policy(self, player_id: str, generator: torch.Generator) -> Player:
        """A frozen snapshot's network as a player; KeyError as for `frozen`."""
        net = self.frozen(player_id)
        version = snapshot_version(player_id, self.lineage)
        assert version is not None
        policy = self._frozen_policies.get(version)
        if policy is None:
            policy = self.kind.fast_player(net, generator, **self.exploration)
            self._frozen_policies[version] = policy
        return policy
