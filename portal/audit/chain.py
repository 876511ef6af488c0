"""The one way to write an audit event: `audit_record`, chained to the previous event by
an HMAC with the audit key, inside the caller's transaction. Who acted (`Actor`) and from
where (`RequestContext`) travel with it."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from portal.audit.choices import ActorType
from portal.audit.models import AuditEvent
from portal.core import sizes
from portal.core.addresses import client_ip
from portal.core.logs import REQUEST_ID

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
            ip=client_ip(request),
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[: sizes.LINE],
        )


def actor_and_context(request) -> dict:
    """Who acts in a web request and where from: the `actor` and `context` keyword
    arguments every audited workflow function takes."""
    return {"actor": Actor.from_request(request), "context": RequestContext.from_request(request)}


def _normalise(data: Any) -> Any:
    # Round-trip through JSON so the hash covers exactly what the JSONField stores.
    return None if data is None else json.loads(json.dumps(data, cls=DjangoJSONEncoder))


# One encoder for every event: json.dumps with options builds a new one per call, which
# was a third of verifying a million events.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_content(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers (everything but the hashes themselves)."""
    created = getattr(event, "created_iso", None) or event.created_at
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
    return _CANONICAL.encode(payload).encode()


def key_id(key: str) -> str:
    """A key's public name, stored on each event it signs (never the key itself)."""
    return hashlib.sha256(b"slipway-audit-key\n" + key.encode()).hexdigest()[:16]


def audit_keys() -> dict[str, bytes]:
    """SLIPWAY_AUDIT_KEYS by id, newest first: new events use the first; older events
    verify with the key they name, so a key is rotated by putting a new one in front (and
    kept as long as its events must verify)."""
    return {key_id(key): key.encode() for key in settings.SLIPWAY_AUDIT_KEYS}


def chain_hash(prev_hash: str, event: AuditEvent, key: bytes | None = None) -> str:
    """HMAC-SHA256 with the audit key over the previous hash, the key's id and the event,
    so someone who can write rows but lacks the key cannot re-hash a changed chain.
    Events written before keys existed (no key id) keep their plain SHA-256."""
    if not event.key_id:
        return hashlib.sha256(prev_hash.encode() + b"\n" + canonical_content(event)).hexdigest()
    message = prev_hash.encode() + b"\n" + event.key_id.encode() + b"\n" + canonical_content(event)
    return hmac.digest(key, message, "sha256").hex()  # one call into OpenSSL: verify's loop


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


# Sent inside the change's transaction, once the event is written: listeners (the
# notifications app) act on commit, so they never announce what was rolled back.
audit_recorded = Signal()


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
    # In a task started by a request, the event carries that request's id.
    context = context or RequestContext(request_id=REQUEST_ID.get())
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Appends are serialised so each event chains to the one committed before it:
            # the lock and the chain's head in one round trip (migration 0007).
            cursor.execute("SELECT slipway_audit_lock_head(%s)", [AUDIT_LOCK_KEY])
            last = cursor.fetchone()[0]
        event = AuditEvent(
            created_at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            actor_name=actor.name[: sizes.QUOTE],
            action=action,
            target_type=target._meta.label if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[: sizes.LINE] if target is not None else "",
            before=_normalise(before),
            after=_normalise(after),
            request_id=context.request_id or "",
            ip=context.ip,
            user_agent=context.user_agent,
            prev_hash=last or GENESIS_HASH,
            team_id=_team_of(target),
        )
        event.key_id, key = next(iter(audit_keys().items()))
        event.hash = chain_hash(event.prev_hash, event, key)
        event.save(force_insert=True)
        audit_recorded.send(sender=AuditEvent, event=event)
    return event
