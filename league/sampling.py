"""Opponent sampling rules: how the matchmaker weighs the frozen players it draws from.

A rule turns the learner's recent win rates against a pool of players (and, for rules
that keep them, OpenAI Five's quality scores) into drawing weights. Rules are registered
by name; config `league.opponent_sampling` and `league.builtin_sampling` name them. A new
rule is a `SamplingRule` and one `register_rule` call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.registry import Registry
from league.quality import QualityScores


@dataclass(frozen=True)
class SamplingRule:
    """`weight(x, exponent)`: the priority of an opponent the learner beats with
    probability x (PFSP's f). `uses_quality`: weigh by the league's quality scores instead
    (the service keeps them only while some rule in use needs them)."""

    name: str
    weight: Callable[[float, float], float] | None = None
    uses_quality: bool = False

    def weights(
        self,
        pool: Sequence[str],
        win_rates: Callable[[], Sequence[float]] | None,
        quality: QualityScores | None,
        exponent: float,
    ) -> list[float]:
        """Drawing weights of `pool` (non-empty). Without win rates (no results yet) or
        where every weight is 0 (every opponent beaten), uniform."""
        if self.uses_quality:
            if quality is None:
                raise ValueError(f"sampling rule {self.name!r} needs the league's quality scores")
            return quality.probabilities(pool)
        if self.weight is None or win_rates is None:
            return [1.0] * len(pool)
        weights = [self.weight(x, exponent) for x in win_rates()]
        return weights if sum(weights) > 0.0 else [1.0] * len(pool)


RULES: Registry[SamplingRule] = Registry("opponent sampling")


def register_rule(rule: SamplingRule) -> SamplingRule:
    return RULES.register(rule.name, rule)


def sampling_rule(name: str) -> SamplingRule:
    return RULES.get(name)


register_rule(SamplingRule("uniform"))
register_rule(SamplingRule("pfsp_hard", lambda x, p: (1.0 - x) ** p))
register_rule(SamplingRule("pfsp_var", lambda x, p: x * (1.0 - x)))
register_rule(SamplingRule("five", uses_quality=True))
