"""Prometheus text exposition format 0.0.4: metric families and their rendering, for the
dashboard's /metrics (league/dashboard.py). Hand-written because the format is small and
the prometheus_client registry's global state does not fit a per-request snapshot."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Metric", "render_metrics"]

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass
class Metric:
    """One metric family: a name, a type, a help line and its samples."""

    name: str
    type: str  # "gauge" | "counter"
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"bad metric name {self.name!r}")
        if self.type not in ("gauge", "counter", "untyped"):
            raise ValueError(f"unsupported metric type {self.type!r}")

    def add(self, value: float, labels: Mapping[str, str] | None = None) -> Metric:
        for key in labels or {}:
            if not _LABEL_NAME.fullmatch(key) or key.startswith("__"):
                raise ValueError(f"bad label name {key!r}")
        self.samples.append((dict(labels or {}), float(value)))
        return self


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def render_metrics(families: Iterable[Metric]) -> str:
    """The text exposition format 0.0.4: per family one HELP and one TYPE line, then its
    samples; label values escaped (backslash, double quote, newline)."""
    lines: list[str] = []
    seen: set[str] = set()
    for family in families:
        if family.name in seen:
            raise ValueError(f"metric family {family.name} given twice")
        seen.add(family.name)
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            text = ",".join(f'{k}="{_escape_label(str(v))}"' for k, v in labels.items())
            label_part = "{" + text + "}" if text else ""
            lines.append(f"{family.name}{label_part} {_format_value(value)}")
    return "\n".join(lines) + "\n"
