"""The one way to write an audit event, and the check that the chain is intact."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from portal.choices import ActorType
from portal.models import AuditCheck, AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works; it names the lock that serialises appends to the chain.
AUDIT_LOCK_KEY = 0x51_1B_A7_A0


@dataclass(frozen=True)
class Actor:
    """Who did it: a user, a user through an API token, or Slipway itself."""

    type: str
    id: str
    name: str

    @classmethod
    def system(cls, name: str = "slipway") -> Actor:
        return cls(ActorType.SYSTEM, "", name)

    @classmethod
    def for_user(cls, user) -> Actor:
        return cls(ActorType.USER, str(user.pk), user.get_username())

    @classmethod
    def from_request(cls, request) -> Actor:
        token = getattr(request, "auth", None)
        user = request.user
        if token is not None and hasattr(token, "prefix"):
            return cls(ActorType.TOKEN, str(user.pk), f"{user.get_username()} (token {token.name})")
        if user.is_authenticated:
            return cls.for_user(user)
        return cls(ActorType.USER, "", "anonymous")


@dataclass(frozen=True)
class RequestContext:
    """Where an action came from."""

    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> RequestContext:
        return cls(
            request_id=getattr(request, "request_id", "") or "",
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300],
        )


def _normalise(data: Any) -> Any:
    # Round-trip through JSON so the hash covers exactly what the JSONField stores.
    return None if data is None else json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def canonical_content(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers (everything but the hashes themselves)."""
    created = event.created_at
    if isinstance(created, datetime):
        created = created.astimezone(UTC).isoformat(timespec="microseconds")
    payload = {
        "created_at": created,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_repr": event.target_repr,
        "before": event.before,
        "after": event.after,
        "request_id": event.request_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_content(event)).hexdigest()


def _team_of(target) -> int | None:
    """The team an event's target belongs to, for who may read the event."""
    if target is None:
        return None
    if target._meta.label == "portal.Team":
        return target.pk
    if getattr(target, "team_id", None) is not None:
        return target.team_id
    service = getattr(target, "service", None)
    return getattr(service, "team_id", None)


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    context: RequestContext | None = None,
) -> AuditEvent:
    """Append one event to the audit log, chained to the previous one.

    Call it inside the transaction of the change it records, so both commit or neither.
    """
    context = context or RequestContext()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Appends are serialised so each event chains to the one committed before it.
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_LOCK_KEY])
        last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            created_at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            actor_name=actor.name[:200],
            action=action,
            target_type=target._meta.label if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:300] if target is not None else "",
            before=_normalise(before),
            after=_normalise(after),
            request_id=context.request_id or "",
            ip=context.ip,
            user_agent=context.user_agent,
            prev_hash=last or GENESIS_HASH,
            team_id=_team_of(target),
        )
        event.hash = chain_hash(event.prev_hash, event)
        event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_verify() -> Iterator[int | ChainBreak]:
    """Walk the chain in order; yield each good event id, then the first break if any."""
    expected_prev = GENESIS_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != expected_prev:
            yield ChainBreak(
                event.pk, "previous-hash link broken (an event was removed or inserted before it)"
            )
            return
        if chain_hash(event.prev_hash, event) != event.hash:
            yield ChainBreak(event.pk, "content does not match its hash (altered)")
            return
        expected_prev = event.hash
        yield event.pk


def new_request_id() -> str:
    return uuid.uuid4().hex


def audit_check(*, trigger: str) -> AuditCheck:
    """Walk the chain and record the result (shown on the audit page)."""
    started = timezone.now()
    count, broken = 0, None
    for item in audit_verify():
        if isinstance(item, ChainBreak):
            broken = item
            break
        count += 1
    return AuditCheck.objects.create(
        started_at=started,
        finished_at=timezone.now(),
        ok=broken is None,
        events=count,
        broken_event_id=broken.event_id if broken else None,
        reason=broken.reason if broken else "",
        trigger=trigger[:30],
    )
