"""Release evidence: one JSON document per release that an auditor can keep — what was built
from which commit by which job with which digest; who requested and approved each
deployment; which gates, checklist items and verifications passed with what values; where
and when it ran; the ids of the audit events behind it and the audit chain's head at the
time — signed with the audit key (HMAC-SHA256 over its canonical JSON), so a saved copy
that was altered no longer verifies (`manage.py verify_evidence FILE`, or the release's
evidence page). Everything comes from records Slipway already keeps; nothing secret is in
it (no Helm values, no credentials)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone

from portal.audit.chain import audit_keys
from portal.audit.models import AuditEvent
from releases.models import ChecklistTick, Deployment, GateResult, Release, VerificationRun

FORMAT = "slipway.release-evidence/1"
ALGORITHM = "HMAC-SHA256"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _user(user) -> str | None:
    return user.get_username() if user is not None else None


def canonical(document: dict) -> bytes:
    """The bytes the signature covers: the document without its signature, keys sorted."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    ).encode()


def _train(d: Deployment) -> dict | None:
    member = getattr(d, "train_member", None)
    if member is None:
        return None
    return {"id": member.train_id, "name": member.train.name, "position": member.position}


def _change(d: Deployment) -> dict | None:
    ticket = getattr(d, "change_ticket", None)
    if ticket is None:
        return None
    return {
        "system": ticket.system.name,
        "number": ticket.number,
        "state": ticket.state,
        "approval": ticket.approval,
        "planned_start": _iso(ticket.planned_start),
        "planned_end": _iso(ticket.planned_end),
        "emergency": ticket.emergency,
        "emergency_reason": ticket.emergency_reason,
        "outcome": ticket.outcome,
    }


def _deployment(d: Deployment) -> dict:
    approval = getattr(d, "approval", None)
    return {
        "id": d.pk,
        "environment": d.environment.slug,
        "kind": d.kind,
        "status": d.status,
        "status_reason": d.status_reason,
        "image": d.image,
        "requested_by": _user(d.requested_by),
        "requested_at": _iso(d.created_at),
        "started_at": _iso(d.started_at),
        "finished_at": _iso(d.finished_at),
        "approval": {
            "approved": approval.approved,
            "by": _user(approval.decided_by),
            "comment": approval.comment,
            "at": _iso(approval.decided_at),
        }
        if approval
        else None,
        "approval_policy": d.approval_policy.name if d.approval_policy_id else None,
        "approvals": [
            {
                "by": _user(v.user),
                "represented_as": v.represented_as,
                "approved": v.approved,
                "comment": v.comment,
                "at": _iso(v.at),
            }
            for v in d.votes.all()
        ],
        "change": _change(d),
        "train": _train(d),
        "gate_override": d.gate_override,
        "freeze_override": d.freeze_override,
        "clusters": [
            {
                "cluster": r.target.cluster.name,
                "namespace": r.target.namespace,
                "helm_release": r.target.helm_release_name,
                "wave": r.wave,
                "status": r.status,
                "helm_revision": r.helm_revision,
                "rolled_back_to_revision": r.rolled_back_to_revision,
                "images_running": r.verified_images,
                "finished_at": _iso(r.finished_at),
            }
            for r in d.rollouts.all()
        ],
    }


def _verification(run: VerificationRun) -> dict:
    return {
        "id": run.pk,
        "deployment": run.deployment_id,
        "environment": run.environment.slug,
        "canary_step": run.canary_step,
        "status": run.status,
        "reason": run.reason,
        "judgement": run.judgement,
        "decided_by": _user(run.decided_by),
        "started_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "measurements": [
            {
                "metric": m.metric_name,
                "sequence": m.sequence,
                "phase": m.phase,
                "value": m.value,
                "query": m.query,
                "at": _iso(m.taken_at),
            }
            for m in run.measurements.all()
        ],
    }


def release_evidence(release: Release, *, generated_by: str) -> dict:
    """The release's evidence now, signed."""
    deployments = list(
        Deployment.objects.filter(release=release)
        .select_related(
            "environment",
            "requested_by",
            "approval__decided_by",
            "approval_policy",
            "change_ticket__system",
            "train_member__train",
        )
        .prefetch_related("rollouts__target__cluster", "votes__user")
        .order_by("id")
    )
    events = AuditEvent.objects.filter(
        Q(target_type="releases.Release", target_id=str(release.pk))
        | Q(target_type="releases.Deployment", target_id__in=[str(d.pk) for d in deployments])
    ).order_by("id")
    head = AuditEvent.objects.order_by("-id").values("id", "hash", "created_at").first()
    service = release.service
    document = {
        "format": FORMAT,
        "generated_at": _iso(timezone.now()),
        "generated_by": generated_by,
        "release": {
            "id": release.pk,
            "service": service.slug,
            "team": service.team.slug,
            "ref": release.ref,
            "commit": release.commit_sha,
            "commit_time": _iso(release.commit_time),
            "repository": service.repository_url,
            "status": release.status,
            "requested_by": _user(release.requested_by),
            "requested_at": _iso(release.created_at),
            "built_at": _iso(release.finished_at),
        },
        "build": {
            "backend": release.build_backend,
            **(
                {"drone": release.drone_server.name, "repository": release.drone_repository}
                if release.build_backend == "drone"
                else {"jenkins": release.jenkins_server.name, "job": release.jenkins_job}
            ),
            "number": release.build_number,
            "url": release.build_url,
            "result": release.build_result,
            "image_repository": release.image_repository,
            "digest": release.image_digest,
        },
        "deployments": [_deployment(d) for d in deployments],
        "gates": [
            {
                "gate": r.gate.name,
                "kind": r.gate.kind,
                "environment": r.gate.environment.slug,
                "passed": r.passed,
                "detail": r.detail,
                "value": r.value,
                "at": _iso(r.checked_at),
            }
            for r in GateResult.objects.filter(release=release)
            .select_related("gate__environment")
            .order_by("id")
        ],
        "checklist": [
            {
                "gate": t.gate.name,
                "ticked_by": _user(t.ticked_by),
                "note": t.note,
                "at": _iso(t.ticked_at),
            }
            for t in ChecklistTick.objects.filter(release=release)
            .select_related("gate", "ticked_by")
            .order_by("id")
        ],
        "verifications": [
            _verification(run)
            for run in VerificationRun.objects.filter(release=release)
            .select_related("environment", "decided_by")
            .prefetch_related("measurements")
            .order_by("id")
        ],
        "audit": {
            "events": [
                {
                    "id": e.pk,
                    "action": e.action,
                    "actor": e.actor_name,
                    "at": _iso(e.created_at),
                    "hash": e.hash,
                }
                for e in events
            ],
            "chain_head": {"id": head["id"], "hash": head["hash"], "at": _iso(head["created_at"])}
            if head
            else None,
        },
    }
    return sign(document)


def sign(document: dict) -> dict:
    """The document with its signature: HMAC-SHA256 with the newest audit key, and a plain
    SHA-256 checksum of the same bytes."""
    (key_id, key), *_ = audit_keys().items()
    body = canonical(document)
    document = {k: v for k, v in document.items() if k != "signature"}
    document["signature"] = {
        "algorithm": ALGORITHM,
        "key_id": key_id,
        "value": hmac.new(key, body, hashlib.sha256).hexdigest(),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return document


@dataclass(frozen=True)
class Check:
    valid: bool
    message: str


def verify(document) -> Check:
    """Whether a saved copy is what Slipway signed, and whether the audit log still holds
    the events it names (the chain head and each event's hash)."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return Check(False, f"Not Slipway release evidence (no format {FORMAT!r}).")
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("algorithm") != ALGORITHM:
        return Check(False, "The evidence carries no signature Slipway can check.")
    key = audit_keys().get(str(signature.get("key_id", "")))
    if key is None:
        return Check(
            False,
            f"Signed with audit key {signature.get('key_id')!r}, which this Slipway does not "
            "hold (SLIPWAY_AUDIT_KEYS): it cannot be checked here.",
        )
    expected = hmac.new(key, canonical(document), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("value", ""))):
        return Check(False, "ALTERED: the signature does not match the content.")
    release = (document.get("release") or {}).get("id")
    audit = document.get("audit") or {}
    named = {e["id"]: e["hash"] for e in audit.get("events", []) if isinstance(e, dict)}
    head = audit.get("chain_head") or {}
    if head:
        named[head.get("id")] = head.get("hash")
    stored = dict(AuditEvent.objects.filter(pk__in=list(named)).values_list("id", "hash"))
    missing = sorted(i for i, h in named.items() if stored.get(i) != h)
    if missing:
        return Check(
            True,
            f"Signature valid (release #{release}, generated {document.get('generated_at')}), "
            f"but this audit log does not hold events {missing[:10]} as the evidence names "
            "them: it comes from another installation, or the log was changed.",
        )
    return Check(
        True,
        f"Valid: signed by audit key {signature['key_id']} on {document.get('generated_at')} "
        f"for release #{release}; its {len(named)} audit events match this audit log.",
    )
