"""The networks an actor plays with: the learner's latest weights and a small cache of
frozen league players (snapshots), all built from validated safetensors payloads."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque

from cluster.codec import decode_weights, weights_spec
from cluster.config import ModelConfig
from cluster.nets import PolicyValueNet, build_net
from cluster.weights import WeightStore

log = logging.getLogger(__name__)

BUILTIN_RANDOM = "random"


def snapshot_version(player_id: str, lineage: str) -> int | None:
    """ "main@v50" -> 50 for the given lineage; None for other players."""
    prefix = f"{lineage}@v"
    if player_id.startswith(prefix) and player_id[len(prefix) :].isdigit():
        return int(player_id[len(prefix) :])
    return None


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
    ):
        self._store, self.lineage = store, lineage
        self._make = lambda: build_net(model, obs_dim, num_actions, continuous).eval()
        self.learner = self._make()
        self._expected = weights_spec(self.learner.state_dict())
        self.learner_version = 0
        self._cache: OrderedDict[int, PolicyValueNet] = OrderedDict()
        self._cache_size = cache_size
        # publish -> adopt delays of recent versions, for latency stats
        self.adopt_times_s: deque[float] = deque(maxlen=1000)

    def _load(self, net: PolicyValueNet, data: bytes) -> tuple[int, dict[str, str]]:
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
        self.learner_version = version
        published = float(meta.get("published_unix", "nan"))
        if published == published:  # not NaN
            self.adopt_times_s.append(max(0.0, time.time() - published))
        return True

    def wait_for_learner(self, timeout_s: float) -> None:
        self._store.wait_for_version(self.lineage, 1, timeout_s)
        if not self.refresh_learner():
            raise RuntimeError(f"no weights published for {self.lineage!r} within {timeout_s}s")

    def frozen(self, player_id: str) -> PolicyValueNet | None:
        """The net of a frozen snapshot; None for the builtin random player."""
        if player_id == BUILTIN_RANDOM:
            return None
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
            self._cache.popitem(last=False)
        return net
