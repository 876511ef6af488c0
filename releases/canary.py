"""Canary steps (opt-in per target, docs/verification.md): the new digest is installed as
a second Helm release beside the stable one (`<release>-canary`), and nginx-ingress's
canary annotations on its Ingress send it a share of the traffic, step by step (10 → 50
→ …). Each step is analysed with the environment's analysis templates (a verification run
of that step), then optionally paused (seconds, or until a lead promotes). A failed step,
or a lead's abort, sets the weight to 0 and removes the canary: the stable release never
changed. After the last step the canary takes all the traffic (weight 100) while the stable release
is upgraded to the digest (the ordinary upgrade and watch), then the canary is removed (if
that upgrade fails, the canary is set to 0 and removed before the stable is rolled back).

A canary starts only where a stable release runs (a first install has nothing to share
traffic with) and never for a rollback. Its state lives on the target's rollout (`canary`):
the Helm release, the step, the weight, the phase and a lead's word; the deployment's task
polls it every CANARY_POLL_SECONDS while it analyses or pauses.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from clusters.helm import Helm
from clusters.rollout import REQUEST_TIMEOUT_SECONDS
from portal.access.choices import Role
from portal.access.permissions import has_role
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.catalog.canary_steps import CANARY_SUFFIX, CanaryStep, parse_canary_steps
from portal.catalog.targets import OWNER_LABEL, owner_value
from portal.core import sizes
from releases.actions import Engine
from releases.choices import (
    CANARY_LIVE,
    CanaryPhase,
    DeploymentKind,
    DeploymentStatus,
    RolloutStatus,
    VerificationStatus,
)
from releases.deploy_values import deployment_values
from releases.errors import Conflict, NotPermitted, ReleaseRefused
from releases.models import Deployment, TargetRollout, VerificationRun
from releases.rollouts import cluster_label, rollout_under_way, rollout_update
from releases.stopping import deployment_stop
from releases.transitions import (
    WORKER,
    Step,
    deployment_fail,
    deployment_note_progress,
    deployment_transition,
)
from releases.verification import cluster_refusal, manifest_containers, rendered_refusal
from releases.verifying import verification_begin

CANARY_POLL_SECONDS = 1.0
CANARY_ANNOTATION = "nginx.ingress.kubernetes.io/canary"
WEIGHT_ANNOTATION = "nginx.ingress.kubernetes.io/canary-weight"
PROMOTE, ABORT = "promote", "abort"


def canary_name(target) -> str:
    return f"{target.helm_release_name}{CANARY_SUFFIX}"


def steps_of(rollout: TargetRollout) -> list[CanaryStep]:
    return parse_canary_steps(rollout.target.canary_steps)


def wanted(deployment: Deployment, rollout: TargetRollout) -> bool:
    """Canary steps for this cluster now: configured, a stable release to share traffic with,
    not a rollback, and not already promoted (the stable upgrade after the last step)."""
    return (
        bool(steps_of(rollout))
        and deployment.kind != DeploymentKind.ROLLBACK
        and rollout.previous_revision is not None
        and (rollout.canary or {}).get("phase") != CanaryPhase.PROMOTING
    )


def _values(deployment: Deployment, target, weight: int, *, reveal: bool) -> list[dict]:
    return [
        *deployment_values(deployment.release, target, reveal_secrets=reveal),
        {"canary": {"enabled": True, "weight": weight}},
    ]


def _canary_ingress_refusal(manifests: list[dict], name: str) -> str | None:
    for manifest in manifests:
        annotations = (manifest.get("metadata") or {}).get("annotations") or {}
        if manifest.get("kind") == "Ingress" and annotations.get(CANARY_ANNOTATION) == "true":
            return None
    return (
        f'The chart renders no Ingress with {CANARY_ANNOTATION}: "true" for the canary '
        f"release {name}, so no traffic could be shifted to it; give the chart an Ingress "
        "that follows canary.enabled and canary.weight (see charts/demo-service), or turn "
        "canary steps off for this target."
    )


def _set_weight(deployment: Deployment, rollout: TargetRollout, helm: Helm, weight: int, step: int):
    """Install or upgrade the canary release with `weight` % of the traffic (audited)."""
    target = rollout.target
    name = canary_name(target)
    helm.upgrade(
        release=name,
        namespace=target.namespace,
        chart=deployment.service.chart,
        values=_values(deployment, target, weight, reveal=True),
        description=f"slipway deployment {deployment.pk}: canary of release "
        f"#{deployment.release_id} at {weight}%",
        version=deployment.service.chart_version or None,
        labels={OWNER_LABEL: owner_value(target)},
    )
    audit_record(
        actor=WORKER,
        action=Engine.CANARY_STEP,
        target=deployment,
        after={"canary": name, "weight": weight, "step": step, **cluster_label(rollout)},
    )


def _note(deployment: Deployment, rollout: TargetRollout, summary: str, wait: float = 0) -> None:
    canary = rollout.canary or {}
    deployment_note_progress(
        deployment=deployment,
        progress={
            "summary": summary,
            "canary": {k: canary.get(k) for k in ("release", "step", "steps", "weight", "phase")},
            **cluster_label(rollout),
        },
        lease=wait + REQUEST_TIMEOUT_SECONDS + 30,
    )


def canary_start(deployment: Deployment, rollout: TargetRollout, helm: Helm) -> Step:
    """The first step: install the canary release beside the stable one."""
    target, release = rollout.target, deployment.release
    steps = steps_of(rollout)
    name = canary_name(target)
    manifests = helm.render(
        release=name,
        namespace=target.namespace,
        chart=deployment.service.chart,
        values=_values(deployment, target, steps[0].weight, reveal=True),
        version=deployment.service.chart_version or None,
    )
    refusal = rendered_refusal(
        manifest_containers(manifests), release.image_repository, release.image_digest
    ) or _canary_ingress_refusal(manifests, name)
    if refusal:
        return deployment_stop(deployment, rollout, RolloutStatus.FAILED, refusal)
    _set_weight(deployment, rollout, helm, steps[0].weight, 1)
    rollout_update(
        rollout,
        status=RolloutStatus.CANARY,
        values=_values(deployment, target, steps[0].weight, reveal=False),
        canary={
            "release": name,
            "step": 1,
            "steps": len(steps),
            "weight": steps[0].weight,
            "phase": CanaryPhase.ROLLING,
            "started_at": timezone.now().isoformat(),
        },
    )
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.CANARY,
        note={"canary": name, "weight": steps[0].weight, **cluster_label(rollout)},
    )
    return Step.NEXT


def canary_step(deployment: Deployment, helm_for, watcher_for) -> Step:
    """One look at the canary under way: watch its pods, judge its analysis, wait out its
    pause or a lead's word, then shift the weight, promote, or abort."""
    rollout = rollout_under_way(deployment)
    if rollout is None or not rollout.canary:
        deployment_fail(deployment=deployment, reason="No canary is under way.")
        return Step.DONE
    canary = dict(rollout.canary)
    target = rollout.target
    if canary.get("abort"):
        said = f"{canary.get('abort_by', 'a lead')} aborted it: {canary['abort']}"
        return _abort(deployment, rollout, helm_for(target), said)
    phase, step, weight = canary["phase"], canary["step"], canary["weight"]
    where = f"step {step} of {canary['steps']} ({weight} %)"
    if phase == CanaryPhase.ROLLING:
        watcher = watcher_for(target)
        progress = watcher.watch(target.namespace, canary["release"], 2.0)
        if progress.complete:
            images = watcher.images(target.namespace, canary["release"])
            refusal = cluster_refusal(
                images, deployment.release.image_repository, deployment.release.image_digest
            )
            if refusal:
                return _abort(deployment, rollout, helm_for(target), refusal)
            return _analyse(deployment, rollout, canary)
        started = datetime.fromisoformat(canary["started_at"])
        timeout = deployment.environment.rollout_timeout_seconds
        if progress.failed or timezone.now() > started + timedelta(seconds=timeout):
            why = progress.failure_reason() if progress.failed else f"not ready after {timeout} s"
            return _abort(deployment, rollout, helm_for(target), f"the canary's pods: {why}")
        _note(deployment, rollout, f"Canary {where}: rolling out ({progress.summary()})")
        return Step.NEXT
    if phase == CanaryPhase.ANALYSING:
        run = VerificationRun.objects.filter(pk=canary.get("run")).first()
        if run is None or run.status in (VerificationStatus.SUCCESSFUL, VerificationStatus.SKIPPED):
            return _pause(deployment, rollout, canary, steps_of(rollout)[step - 1])
        if run.status == VerificationStatus.RUNNING:
            _note(deployment, rollout, f"Canary {where}: analysing (run #{run.pk})",
                  CANARY_POLL_SECONDS)  # fmt: skip
            return Step.WAIT
        if run.status == VerificationStatus.INCONCLUSIVE:
            canary |= {"phase": CanaryPhase.PAUSED, "wait_for_lead": True, "paused_until": None,
                       "why": f"analysis inconclusive: {run.reason[: sizes.QUOTE]}"}  # fmt: skip
            rollout_update(rollout, canary=canary)
            return Step.WAIT
        return _abort(deployment, rollout, helm_for(target),
                      f"its analysis (run #{run.pk}) failed: {run.reason}")  # fmt: skip
    if phase == CanaryPhase.PAUSED:
        until = canary.get("paused_until")
        due = not canary.get("wait_for_lead") and (
            until is None or timezone.now() >= datetime.fromisoformat(until)
        )
        if canary.get("promote") or due:
            return _next(deployment, rollout, canary, helm_for(target))
        if canary.get("wait_for_lead"):
            said = canary.get("why") or "paused"
            _note(deployment, rollout, f"Canary {where}: {said}; waiting for a lead to promote "
                  "or abort it", CANARY_POLL_SECONDS)  # fmt: skip
        else:
            _note(deployment, rollout, f"Canary {where}: paused until {until[11:19]} UTC",
                  CANARY_POLL_SECONDS)  # fmt: skip
        return Step.WAIT
    deployment_fail(deployment=deployment, reason=f"Unknown canary phase {phase!r}.")
    return Step.DONE


def _analyse(deployment: Deployment, rollout: TargetRollout, canary: dict) -> Step:
    run = verification_begin(deployment, canary_step=canary["step"], canary_weight=canary["weight"])
    canary |= {"phase": CanaryPhase.ANALYSING, "run": run.pk if run else None}
    rollout_update(rollout, canary=canary)
    return Step.NEXT


def _pause(deployment: Deployment, rollout: TargetRollout, canary: dict, step: CanaryStep) -> Step:
    until = timezone.now() + timedelta(seconds=step.pause_seconds)
    canary |= {"phase": CanaryPhase.PAUSED, "wait_for_lead": step.wait_for_lead,
               "paused_until": None if step.wait_for_lead else until.isoformat()}  # fmt: skip
    rollout_update(rollout, canary=canary)
    return Step.NEXT


def _next(deployment: Deployment, rollout: TargetRollout, canary: dict, helm: Helm) -> Step:
    """The step passed: the next weight, or (after the last) promote to the stable release."""
    steps = steps_of(rollout)
    if canary["step"] < len(steps):
        following = steps[canary["step"]]
        _set_weight(deployment, rollout, helm, following.weight, canary["step"] + 1)
        canary = {k: v for k, v in canary.items() if k not in ("promote", "promote_by", "why")}
        canary |= {"step": canary["step"] + 1, "weight": following.weight}
        return _analyse(deployment, rollout, canary)  # one update: never "paused" at the new weight
    # Promote: all the traffic to the canary while the stable release is upgraded (the
    # ordinary upgrade and watch), then the canary goes.
    _set_weight(deployment, rollout, helm, 100, canary["step"] + 1)
    canary = {k: v for k, v in canary.items() if k not in ("promote", "promote_by", "why")}
    canary |= {"phase": CanaryPhase.PROMOTING, "weight": 100}
    rollout_update(rollout, canary=canary, status=RolloutStatus.DEPLOYING)
    deployment_transition(
        deployment=deployment,
        to=DeploymentStatus.DEPLOYING,
        note={"canary": canary["release"], "promoted": True, **cluster_label(rollout)},
    )
    return Step.NEXT


def _take_down(
    deployment: Deployment, rollout: TargetRollout, helm: Helm, *, at: str, reason: str
) -> str:
    """Traffic back to the stable release (weight 0), the canary release uninstalled, the
    rollout's canary marked aborted, audited. Returns the canary release's name."""
    canary = rollout.canary
    _set_weight(deployment, rollout, helm, 0, canary.get("step", 0))
    helm.uninstall(release=canary["release"], namespace=rollout.target.namespace)
    rollout_update(rollout, canary={**canary, "phase": CanaryPhase.ABORTED, "weight": 0})
    audit_record(
        actor=WORKER,
        action=Engine.CANARY_ABORTED,
        target=deployment,
        after={"canary": canary["release"], "at": at, "reason": reason[: sizes.PARAGRAPH],
               **cluster_label(rollout)},
    )  # fmt: skip
    return canary["release"]


def _abort(deployment: Deployment, rollout: TargetRollout, helm: Helm, reason: str) -> Step:
    """A failed step or a lead's abort: the canary goes and the deployment ends rolled back
    (the stable release never changed)."""
    canary = rollout.canary
    said = f"step {canary['step']} of {canary['steps']} ({canary['weight']} %)"
    name = _take_down(deployment, rollout, helm, at=said, reason=reason)
    return deployment_stop(
        deployment,
        rollout,
        RolloutStatus.ROLLED_BACK,
        f"Canary aborted at {said}: {reason}\nTraffic is back on the stable release (weight "
        f"0) and the canary Helm release {name} was removed.",
    )


def canary_discard(deployment: Deployment, rollout: TargetRollout, helm: Helm, reason: str) -> str:
    """The stable upgrade after the last step failed: the canary (holding the traffic) goes
    first. Returns the reason, saying so."""
    if (rollout.canary or {}).get("phase") != CanaryPhase.PROMOTING:
        return reason
    name = _take_down(deployment, rollout, helm, at="promotion", reason=reason)
    return f"{reason}\nThe canary release {name} was set to weight 0 and removed."


def canary_leftovers(deployment: Deployment, helm_for) -> list[str]:
    """The deployment ended some other way (an unexpected error, a lead's cancel) while a
    canary was installed: it goes. Returns the releases removed."""
    why = f"the deployment ended {deployment.status}: the canary was left installed"
    return [
        _take_down(
            deployment,
            rollout,
            helm_for(rollout.target),
            at=f"step {rollout.canary.get('step')}",
            reason=why,
        )
        for rollout in TargetRollout.objects.select_related("target__cluster").filter(
            deployment=deployment, canary__phase__in=CANARY_LIVE
        )
    ]


def canary_remove(deployment: Deployment, rollout: TargetRollout, helm: Helm) -> None:
    """After the stable release rolled out with the digest: the canary goes (audited)."""
    canary = rollout.canary or {}
    if canary.get("phase") != CanaryPhase.PROMOTING:
        return
    helm.uninstall(release=canary["release"], namespace=rollout.target.namespace)
    rollout_update(rollout, canary={**canary, "phase": CanaryPhase.PROMOTED, "weight": 100})
    audit_record(
        actor=WORKER,
        action=Engine.CANARY_REMOVED,
        target=deployment,
        after={"canary": canary["release"], **cluster_label(rollout)},
    )


# -- a lead's word ------------------------------------------------------------------------


def canary_decide(
    *,
    deployment: Deployment,
    action: str,
    reason: str,
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> Deployment:
    """A lead promotes a paused canary (the next step, or the stable upgrade after the last)
    or aborts it (weight 0, canary removed); the deployment's task acts on it within
    CANARY_POLL_SECONDS. Audited with the reason."""
    reason = (reason or "").strip()[: sizes.LINE]
    if action not in (PROMOTE, ABORT):
        raise ReleaseRefused(f"action must be {PROMOTE} or {ABORT}")
    if not reason:
        raise ReleaseRefused("Say why: a reason is required.")
    if not has_role(user, deployment.service, Role.LEAD):
        raise NotPermitted(
            f"Only a lead of {deployment.service.team} may promote or abort a canary."
        )
    with transaction.atomic():
        rollout = (
            TargetRollout.objects.select_for_update()
            .filter(deployment=deployment, status=RolloutStatus.CANARY)
            .first()
        )
        if rollout is None or deployment.status != DeploymentStatus.CANARY:
            raise Conflict(f"Deployment #{deployment.pk} has no canary under way.")
        canary = dict(rollout.canary)
        if action == PROMOTE and canary.get("phase") != CanaryPhase.PAUSED:
            raise Conflict(
                f"The canary is {canary.get('phase')}: a lead promotes it once its step is "
                "analysed and paused (abort is possible at any time)."
            )
        if canary.get("abort") or canary.get("promote"):
            raise Conflict("A lead already decided on this step; the worker is acting on it.")
        key = "promote" if action == PROMOTE else "abort"
        canary |= {key: True if action == PROMOTE else reason, f"{key}_by": user.get_username()}
        rollout_update(rollout, canary=canary)
        audit_record(
            actor=actor,
            action=Engine.CANARY_PROMOTED if action == PROMOTE else Engine.CANARY_ABORT_ASKED,
            target=deployment,
            context=context,
            after={"canary": canary["release"], "step": canary["step"],
                   "weight": canary["weight"], "reason": reason},
        )  # fmt: skip
    return deployment
