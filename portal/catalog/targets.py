"""Where a service may deploy: the boundaries a deployment target stays inside.

A target names a cluster, a namespace and a Helm release. Without limits a team admin
could point a Beta target at Prod's release and have a developer's unapproved Beta
deployment upgrade it. So:

- platform admins (superusers) say, per cluster, which environments may use it
  (`ClusterEnvironment`) and which namespaces each team may deploy into
  (`NamespaceGrant`, patterns such as `shop-*`); system namespaces (`kube-*`,
  `default`, SLIPWAY_SYSTEM_NAMESPACES) never;
- a team admin edits only targets of the team's services inside those grants; a target
  of a protected environment (Prod), before or after the change, needs a platform admin;
- (cluster, namespace, Helm release) is unique across targets (a database constraint),
  and the Helm release itself carries the label of the target that owns it, checked
  before every upgrade (releases/deploy_steps.py): a renamed target never hands its
  release to another. A release installed without Slipway is taken over only when a
  platform admin adopts it (`target_adopt_release`), audited.

Every change is audited with before and after.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from portal.access.choices import Role
from portal.access.permissions import RoleMissing, role_in_team
from portal.audit.actions import Catalog
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.audit.changes import snapshot
from portal.catalog.models import ClusterEnvironment, DeploymentTarget, NamespaceGrant
from portal.catalog.validators import system_namespace
from portal.core.errors import Refused

# The label on a Helm release that names the target owning it (helm --labels).
OWNER_LABEL = "slipway.dev/target"


class TargetRefused(Refused):
    """The target cannot be saved (or deployed) as it stands; the message says why."""


def release_key(target: DeploymentTarget) -> str:
    """What a Helm release is known by: cluster id, namespace, release name."""
    return f"{target.cluster_id}/{target.namespace}/{target.helm_release_name}"


def owner_value(target: DeploymentTarget) -> str:
    """The value of OWNER_LABEL on the Helm release this target owns."""
    return str(target.pk)


def target_refusal(target: DeploymentTarget) -> str | None:
    """Why the target points somewhere its service may not deploy, or None if it may."""
    cluster, namespace = target.cluster, target.namespace
    environment, team = target.environment, target.service.team
    if system_namespace(namespace):
        return f"{namespace} is a system namespace: Slipway never deploys there."
    if not ClusterEnvironment.objects.filter(cluster=cluster, environment=environment).exists():
        return (
            f"Cluster {cluster} does not serve {environment}: a platform admin says which "
            "environments may use each cluster."
        )
    grants = list(
        NamespaceGrant.objects.filter(cluster=cluster, team=team).values_list(
            "pattern", "environment_id"
        )
    )
    patterns = sorted(p for p, env in grants if env in (None, environment.pk))
    if not any(fnmatchcase(namespace, pattern) for pattern in patterns):
        allowed = ", ".join(patterns) or "none"
        return (
            f"{team} may not deploy to namespace {namespace} on cluster {cluster} for "
            f"{environment} (allowed there: {allowed}); a platform admin grants namespaces."
        )
    return None


def require_target_change(user, target: DeploymentTarget, before: DeploymentTarget | None):
    """The user may make this change: a team admin of the service's team for ordinary
    targets, a platform admin when a protected environment is on either side."""
    if user.is_superuser:
        return
    if role_in_team(user, target.service.team_id) != Role.ADMIN:
        raise RoleMissing(f"You need the admin role in {target.service.team} for this.")
    for side in (before, target):
        if side is not None and side.environment.protected:
            raise RoleMissing(
                f"{side.environment} is protected: only a platform admin changes where its "
                "targets point."
            )


def _messages(exc: ValidationError) -> str:
    return "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())


def target_save(
    *,
    target: DeploymentTarget,
    user,
    actor: Actor,
    context: RequestContext | None = None,
) -> DeploymentTarget:
    """Create or change a deployment target inside its team's boundaries, audited with
    before and after (the changed fields)."""
    with transaction.atomic():
        stored = (
            DeploymentTarget.objects.select_for_update()
            .select_related("environment", "service")
            .filter(pk=target.pk)
            .first()
            if target.pk
            else None
        )
        require_target_change(user, target, stored)
        try:
            # The model's constraints say, in words, that a Helm release has one owner and
            # a service one target per environment.
            target.full_clean()
        except ValidationError as exc:
            raise TargetRefused(_messages(exc)) from exc
        refusal = target_refusal(target)
        if refusal:
            raise TargetRefused(refusal)
        before = snapshot(stored) if stored is not None else None
        try:
            with transaction.atomic():
                target.save()
        except IntegrityError as exc:
            raise TargetRefused("Another change to the targets won; reload, try again.") from exc
        after = snapshot(target)
        if before is not None:
            changed = sorted(k for k in after if before.get(k) != after.get(k))
            before = {k: before.get(k) for k in changed}
            after = {k: after[k] for k in changed}
        audit_record(
            actor=actor,
            action=Catalog.TARGET_CHANGE if before is not None else Catalog.TARGET_CREATE,
            target=target,
            context=context,
            before=before,
            after=after,
        )
    return target


def target_adopt_release(
    *, target: DeploymentTarget, user, actor: Actor, context: RequestContext | None = None
) -> DeploymentTarget:
    """A platform admin lets the target take over the Helm release it points at: one no
    Slipway target owns (installed by hand or by another tool), or one whose owning target
    is gone. Audited. The next deployment labels the release as this target's."""
    if not user.is_superuser:
        raise RoleMissing("Only a platform admin may adopt a Helm release Slipway did not install.")
    key = release_key(target)
    with transaction.atomic():
        DeploymentTarget.objects.filter(pk=target.pk).update(adopted_release=key)
        audit_record(
            actor=actor,
            action=Catalog.TARGET_ADOPT,
            target=target,
            context=context,
            before={"adopted_release": target.adopted_release or None},
            after={
                "adopted_release": key,
                "cluster": str(target.cluster),
                "namespace": target.namespace,
                "helm_release_name": target.helm_release_name,
            },
        )
    target.adopted_release = key
    return target
