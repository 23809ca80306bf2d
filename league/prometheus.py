"""The dashboard's /metrics: metric families made afresh for each scrape (from league.db
and status.json) and rendered by prometheus_client, through a collector on a registry of
the dashboard's own, so nothing lives in the library's global registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.core import Metric as Family
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metric", "MetricsEndpoint"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@dataclass
class Metric:
    """One metric family as the views build it: a name, "gauge" or "counter" (named
    ..._total), a help line and samples with any labels."""

    name: str
    type: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type not in ("gauge", "counter"):
            raise ValueError(f"unsupported metric type {self.type!r}")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name!r} must be named ..._total")

    def add(self, value: float, labels: Mapping[str, str] | None = None) -> Metric:
        self.samples.append((dict(labels or {}), float(value)))
        return self

    def family(self) -> Family:
        """As prometheus_client's family (which validates the names)."""
        if self.type == "counter":
            family: Family = CounterMetricFamily(self.name, self.help)
        else:
            family = GaugeMetricFamily(self.name, self.help)
        sample_name = family.name + ("_total" if self.type == "counter" else "")
        for labels, value in self.samples:
            family.add_sample(sample_name, labels, value)
        return family


class _Snapshot(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterator[Family]:
        for metric in self._families():
            yield metric.family()


class MetricsEndpoint:
    """What /metrics answers: `families()` called per scrape, rendered in the text
    exposition format 0.0.4."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Snapshot(families))

    def render(self) -> bytes:
        return generate_latest(self._registry)
