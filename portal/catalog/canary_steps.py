"""A target's canary steps, as a platform admin or team admin writes them: the traffic
weights the new digest gets beside the stable release, in order, each with an optional
pause. `[{"weight": 10}, {"weight": 50, "pause": "lead"}, {"weight": 100}]` sends 10 %,
then 50 % and waits for a lead, then promotes. A step's pause is seconds, or "lead" (until
a lead promotes); the final 100 % step (written or not) upgrades the stable release."""

from __future__ import annotations

from dataclasses import dataclass

LEAD = "lead"
# The canary's Helm release is the stable one's name with this suffix.
CANARY_SUFFIX = "-canary"


class CanaryStepsInvalid(ValueError):
    """The steps are not a list of {"weight": 1..100, "pause": seconds | "lead"}."""


@dataclass(frozen=True)
class CanaryStep:
    weight: int
    pause_seconds: int = 0
    wait_for_lead: bool = False

    def as_dict(self) -> dict:
        return {"weight": self.weight, "pause_seconds": self.pause_seconds,
                "wait_for_lead": self.wait_for_lead}  # fmt: skip


def parse_canary_steps(value) -> list[CanaryStep]:
    """The steps before promotion (weights below 100), in order; [] when off."""
    if value in (None, "", []):
        return []
    if not isinstance(value, list):
        raise CanaryStepsInvalid('Canary steps are a list, e.g. [{"weight": 10}, {"weight": 50}].')
    steps: list[CanaryStep] = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) - {"weight", "pause"}:
            raise CanaryStepsInvalid(
                f'Step {n}: write {{"weight": 1..100, "pause": seconds or "lead"}}.'
            )
        weight, pause = item.get("weight"), item.get("pause", 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
            raise CanaryStepsInvalid(f"Step {n}: weight must be a whole percentage, 1 to 100.")
        if steps and weight <= steps[-1].weight:
            raise CanaryStepsInvalid(
                f"Step {n}: weights must grow ({steps[-1].weight} → {weight})."
            )
        if weight == 100:
            if n != len(value):
                raise CanaryStepsInvalid(f"Step {n}: 100 % promotes, so it comes last.")
            break
        if pause == LEAD:
            steps.append(CanaryStep(weight, wait_for_lead=True))
        elif isinstance(pause, int) and not isinstance(pause, bool) and 0 <= pause <= 86400:
            steps.append(CanaryStep(weight, pause_seconds=pause))
        else:
            raise CanaryStepsInvalid(f'Step {n}: pause is seconds (0 to 86400) or "lead".')
    return steps
