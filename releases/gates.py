"""Promotion gates: what must hold in an environment before a release may be promoted out
of it (Beta → Prod). Checked when the promotion is requested and again when a lead
approves it; each check is stored (GateResult) and shown. A failing gate refuses the
promotion with the gate's result; a lead may override with a reason (audited).

- soak: the release has run in the environment for at least N minutes;
- prometheus: a PromQL query ({service}, {namespace}, {window} filled in) returns a value
  within bounds;
- checklist: a lead ticked the item for this release (audited).

An environment's gates apply to every service leaving it; a service's slipway.yaml may add
its own there (releases/declared.py), never take one away.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from doors.prometheus import PrometheusError, instant_value
from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.models import DeploymentTarget, Environment
from portal.core import sizes
from releases.actions import Engine
from releases.choices import DeploymentKind, GateKind
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.models import ChecklistTick, GateResult, PromotionGate, Release
from releases.promotion import environment_current_deployment, previous_environment


class GateRefused(Conflict):
    """A promotion gate is not passed and nobody overrode it (409: it may pass later)."""


@dataclass(frozen=True)
class Verdict:
    gate: PromotionGate
    passed: bool
    detail: str
    value: float | None = None


def _minutes(delta) -> int:
    return int(delta.total_seconds() // 60)


def _soak(gate: PromotionGate, release: Release, source: Environment, current) -> Verdict:
    if current is None or current.release_id != release.pk:
        return Verdict(gate, False, f"release #{release.pk} does not run in {source.name} now")
    ran = _minutes(timezone.now() - current.finished_at)
    if ran >= gate.soak_minutes:
        return Verdict(
            gate, True, f"has run in {source.name} {ran} min (at least {gate.soak_minutes})"
        )
    return Verdict(
        gate,
        False,
        f"has run in {source.name} {ran} min of {gate.soak_minutes}; "
        f"{gate.soak_minutes - ran} min left",
    )


def promql(gate: PromotionGate, service_slug: str, namespace: str) -> str:
    """The gate's query with its placeholders filled; PromQL's own braces stay as they are."""
    return (
        gate.query.replace("{service}", service_slug)
        .replace("{namespace}", namespace)
        .replace("{window}", f"{gate.soak_minutes}m")
    )


def _bounds(gate: PromotionGate) -> str:
    low = "" if gate.min_value is None else f"≥ {gate.min_value:g}"
    high = "" if gate.max_value is None else f"≤ {gate.max_value:g}"
    return " and ".join(b for b in (low, high) if b) or "any value"


def _prometheus(gate: PromotionGate, release: Release, source: Environment) -> Verdict:
    target = DeploymentTarget.objects.filter(service=release.service_id, environment=source).first()
    query = promql(gate, release.service.slug, target.namespace if target else "")
    try:
        value = instant_value(gate.prometheus_url, query)
    except PrometheusError as exc:
        return Verdict(gate, False, f"{exc} (query: {query})")
    within = (gate.min_value is None or value >= gate.min_value) and (
        gate.max_value is None or value <= gate.max_value
    )
    return Verdict(gate, within, f"value {value:g}, wanted {_bounds(gate)}", value)


def _checklist(gate: PromotionGate, release: Release) -> Verdict:
    tick = (
        ChecklistTick.objects.filter(gate=gate, release=release).select_related("ticked_by").first()
    )
    if tick is None:
        return Verdict(gate, False, "not ticked yet: a lead ticks it on the release page")
    return Verdict(gate, True, f"ticked by {tick.ticked_by.get_username()}")


def describe_failed(verdicts: list[Verdict]) -> str:
    """`soak: has run in Beta 12 min of 30; 18 min left; QA: not ticked yet …`"""
    return "; ".join(f"{v.gate.name}: {v.detail}" for v in verdicts if not v.passed)


def gates_for(environment: Environment, service_id: int) -> list[PromotionGate]:
    """The environment's own gates, and those the service's slipway.yaml adds there."""
    return list(
        PromotionGate.objects.filter(environment=environment, enabled=True)
        .filter(Q(service__isnull=True) | Q(service_id=service_id))
        .order_by("order", "id")
    )


def gates_check(*, release: Release, environment: Environment) -> list[Verdict]:
    """Evaluate the gates of the environment before `environment`; store each result."""
    source = previous_environment(release.service, environment)
    if source is None:
        return []
    gates = gates_for(source, release.service_id)
    if not gates:
        return []
    current = environment_current_deployment(service=release.service_id, environment=source)
    verdicts = []
    for gate in gates:
        if gate.kind == GateKind.SOAK:
            verdicts.append(_soak(gate, release, source, current))
        elif gate.kind == GateKind.PROMETHEUS:
            verdicts.append(_prometheus(gate, release, source))
        else:
            verdicts.append(_checklist(gate, release))
    GateResult.objects.bulk_create(
        GateResult(
            gate=v.gate,
            release=release,
            passed=v.passed,
            detail=v.detail[: sizes.PARAGRAPH],
            value=v.value,
        )
        for v in verdicts
    )
    return verdicts


def gates_enforce(
    *, release: Release, environment: Environment, kind: str, user, override_reason: str = ""
) -> dict | None:
    """Refuse a promotion whose gates fail, unless a lead overrides them with a reason;
    returns the override to record (None when every gate passed or none applies)."""
    if kind != DeploymentKind.PROMOTE:
        return None
    failed = [v for v in gates_check(release=release, environment=environment) if not v.passed]
    if not failed:
        return None
    reason = (override_reason or "").strip()
    if not reason:
        raise GateRefused(
            f"Promotion gates not passed for release #{release.pk}: {describe_failed(failed)}. "
            "A lead may override them with a reason."
        )
    if user is None or not has_role(user, release.service, Role.LEAD):
        raise NotPermitted("Only a lead may override promotion gates.")
    return {
        "reason": reason[: sizes.LINE],
        "by": user.get_username(),
        "gates": [{"gate": v.gate.name, "detail": v.detail[: sizes.QUOTE]} for v in failed],
    }


def checklist_tick(
    *,
    gate: PromotionGate,
    release: Release,
    user,
    actor: Actor,
    note: str = "",
    context: RequestContext | None = None,
) -> ChecklistTick:
    """A lead ticks a checklist item for a release (once), audited."""
    if gate.kind != GateKind.CHECKLIST:
        raise ReleaseRefused(f"{gate.name} is not a checklist item.")
    if gate.service_id not in (None, release.service_id):
        raise ReleaseRefused(f"{gate.name} is a gate of {gate.service}, not of {release.service}.")
    if not has_role(user, release.service, Role.LEAD):
        raise NotPermitted("Only a lead may tick a checklist item.")
    with transaction.atomic():
        tick, made = ChecklistTick.objects.get_or_create(
            gate=gate, release=release, defaults={"ticked_by": user, "note": note[: sizes.LINE]}
        )
        if made:
            audit_record(
                actor=actor,
                action=Engine.CHECKLIST_TICKED,
                target=release,
                after={"gate": gate.name, "note": note[: sizes.LINE]},
                context=context,
            )
    return tick
