"""Judging measurements, as Argo Rollouts' analysis does, in plain functions.

A condition is `result <op> number`, several joined by `and` / `or` (`result >= 0 and
result < 0.05`); nothing else is evaluated, so a template cannot run code. A measurement is
successful when the success condition holds, failed when the failure condition holds (with
only a success condition: when it does not hold; with only a failure condition: successful
when it does not hold), and inconclusive when both are given and neither holds. A query
that gives no value is an error, counted with the inconclusive ones.

A metric fails once its failed measurements exceed its failure limit, and is inconclusive
once its inconclusive ones exceed its inconclusive limit; a run fails when one metric
fails, is inconclusive when one is (and none failed), and is successful when every metric
took all its measurements.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from releases.choices import MeasurementPhase, VerificationStatus

_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_CLAUSE = re.compile(r"^\s*result\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")


class ConditionError(ValueError):
    """A condition that is not `result <op> number` (joined by and / or)."""


Clause = tuple[str, float]


def parse_condition(text: str) -> list[list[Clause]]:
    """`a and b or c` as [[a, b], [c]] (and binds tighter); [] for an empty condition."""
    if not text.strip():
        return []
    groups: list[list[Clause]] = []
    for part in re.split(r"\s+or\s+", text.strip()):
        group: list[Clause] = []
        for clause in re.split(r"\s+and\s+", part):
            match = _CLAUSE.match(clause)
            if match is None:
                raise ConditionError(
                    f"'{clause.strip()[:60]}' is not a condition: write `result < 0.05` "
                    "(operators < <= > >= == !=), joined by `and` or `or`."
                )
            group.append((match.group(1), float(match.group(2))))
        groups.append(group)
    return groups


def holds(condition: list[list[Clause]], value: float) -> bool:
    return any(all(_COMPARE[op](value, bound) for op, bound in group) for group in condition)


def judge(value: float, success: str, failure: str) -> str:
    """A measured value's phase under the metric's conditions."""
    succeeds, fails = parse_condition(success), parse_condition(failure)
    if succeeds and holds(succeeds, value):
        return MeasurementPhase.SUCCESSFUL
    if fails and holds(fails, value):
        return MeasurementPhase.FAILED
    if succeeds and fails:
        return MeasurementPhase.INCONCLUSIVE
    return MeasurementPhase.FAILED if succeeds else MeasurementPhase.SUCCESSFUL


@dataclass(frozen=True)
class MetricTally:
    """What one metric's measurements add up to so far."""

    name: str
    count: int
    failure_limit: int
    inconclusive_limit: int
    phases: tuple[str, ...]

    @property
    def failed(self) -> int:
        return sum(p == MeasurementPhase.FAILED for p in self.phases)

    @property
    def inconclusive(self) -> int:
        return sum(
            p in (MeasurementPhase.INCONCLUSIVE, MeasurementPhase.ERROR) for p in self.phases
        )

    @property
    def outcome(self) -> str:
        """failed / inconclusive once over a limit, successful when all were taken, else
        running."""
        if self.failed > self.failure_limit:
            return VerificationStatus.FAILED
        if self.inconclusive > self.inconclusive_limit:
            return VerificationStatus.INCONCLUSIVE
        if len(self.phases) >= self.count:
            return VerificationStatus.SUCCESSFUL
        return VerificationStatus.RUNNING

    def why(self) -> str:
        taken = len(self.phases)
        if self.outcome == VerificationStatus.FAILED:
            return (
                f"{self.name}: {self.failed} of {taken} measurements failed "
                f"(limit {self.failure_limit})"
            )
        if self.outcome == VerificationStatus.INCONCLUSIVE:
            return (
                f"{self.name}: {self.inconclusive} of {taken} measurements inconclusive or "
                f"without data (limit {self.inconclusive_limit})"
            )
        return f"{self.name}: {taken - self.failed - self.inconclusive} of {taken} successful"


def run_outcome(tallies: Iterable[MetricTally]) -> tuple[str, str]:
    """The run's status and the reason, from its metrics' tallies."""
    tallies = list(tallies)
    for status in (VerificationStatus.FAILED, VerificationStatus.INCONCLUSIVE):
        over = [t for t in tallies if t.outcome == status]
        if over:
            return status, "; ".join(t.why() for t in over)
    if all(t.outcome == VerificationStatus.SUCCESSFUL for t in tallies):
        return VerificationStatus.SUCCESSFUL, "; ".join(t.why() for t in tallies)
    return VerificationStatus.RUNNING, ""
