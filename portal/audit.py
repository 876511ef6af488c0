"""The one way to write an audit event, and the check that the chain is intact."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import uuid
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import CharField, Func
from django.dispatch import Signal
from django.utils import timezone

from portal.choices import ActorType
from portal.logs import REQUEST_ID
from portal.models import AuditAnchor, AuditCheck, AuditEvent

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
            user_agent=(request.META.get("HTTP_USER_AGENT") or "")[:300],
        )


def actor_and_context(request) -> dict:
    """Who acts in a web request and where from: the `actor` and `context` keyword
    arguments every audited workflow function takes."""
    return {"actor": Actor.from_request(request), "context": RequestContext.from_request(request)}


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or, when that is one of SLIPWAY_TRUSTED_PROXIES,
    the nearest address in X-Forwarded-For that is not a trusted proxy."""
    remote = request.META.get("REMOTE_ADDR") or None
    if not remote or not _trusted(remote):
        return remote
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not _trusted(address):
            return address if _valid(address) else remote
    return remote


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _trusted(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(net, strict=False) for net in settings.SLIPWAY_TRUSTED_PROXIES
    )


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
    return hmac.new(key, message, hashlib.sha256).hexdigest()


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
        event.key_id, key = next(iter(audit_keys().items()))
        event.hash = chain_hash(event.prev_hash, event, key)
        event.save(force_insert=True)
        audit_recorded.send(sender=AuditEvent, event=event)
    return event


# What verification reads of each event: the hashed content, the link and the hash.
_VerifiedRow = namedtuple(
    "_VerifiedRow",
    [
        "pk", "created_iso", "actor_type", "actor_id", "actor_name", "action", "target_type",
        "target_id", "target_repr", "before", "after", "request_id", "ip", "user_agent",
        "prev_hash", "hash", "key_id",
    ],
)  # fmt: skip


# created_at exactly as canonical_content writes it (isoformat in UTC, microseconds),
# formatted by PostgreSQL: parsing a million timestamps only to print them again is slow.
class _UtcIso(Func):
    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    )
    output_field = CharField()


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    reason: str


def audit_verify(anchors: list[tuple[int, str]] = ()) -> Iterator[int | ChainBreak]:
    """Walk the chain in order; yield each good event id, then the first break if any.

    `anchors` are (event id, hash) pairs published earlier (logs, metrics): an anchor the
    chain no longer reaches means its tail was cut off.
    """
    keys = audit_keys()
    expected_prev = GENESIS_HASH
    keyed = False
    pending = dict(anchors)
    last_id = 0
    # Plain rows, not model instances: a million events verify in seconds, not minutes,
    # in the memory of one chunk (a server-side cursor).
    rows = (
        AuditEvent.objects.order_by("id")
        .annotate(created_iso=_UtcIso("created_at"))
        .values_list(*_VerifiedRow._fields)
    )
    for event in map(_VerifiedRow._make, rows.iterator(chunk_size=10_000)):
        if event.prev_hash != expected_prev:
            yield ChainBreak(
                event.pk, "previous-hash link broken (an event was removed or inserted before it)"
            )
            return
        if event.key_id:
            keyed = True
            if event.key_id not in keys:
                yield ChainBreak(
                    event.pk, f"signed with key {event.key_id}, which SLIPWAY_AUDIT_KEYS lacks"
                )
                return
        elif keyed:
            yield ChainBreak(event.pk, "unsigned event after signed ones (forged)")
            return
        if not hmac.compare_digest(
            chain_hash(event.prev_hash, event, keys.get(event.key_id)), event.hash
        ):
            yield ChainBreak(event.pk, "content does not match its hash (altered or re-hashed)")
            return
        if event.pk in pending and pending.pop(event.pk) != event.hash:
            yield ChainBreak(event.pk, "differs from the hash an anchor recorded for it")
            return
        expected_prev, last_id = event.hash, event.pk
        yield event.pk
    if pending:
        anchor = max(pending)
        yield ChainBreak(
            anchor,
            f"chain cut short: an anchor recorded event #{anchor}, but the log ends at #{last_id}",
        )


def audit_head() -> dict:
    """The chain's head, published as an anchor: how many events, the last id and hash."""
    last = AuditEvent.objects.order_by("-id").values("id", "hash").first()
    return {
        "count": AuditEvent.objects.count(),
        "last_id": last["id"] if last else 0,
        "last_hash": last["hash"] if last else GENESIS_HASH,
    }


def audit_anchor_publish() -> dict:
    """Record the chain's head as an anchor (a row and a log line)."""
    head = audit_head()
    if head["last_id"]:
        AuditAnchor.objects.create(
            created_at=timezone.now(),
            last_event_id=head["last_id"],
            last_hash=head["last_hash"],
            events=head["count"],
        )
    structlog.get_logger("slipway.audit").info(
        "audit.anchor", anchor=f"{head['last_id']}:{head['last_hash']}", **head
    )
    return head


def latest_anchor() -> tuple[int, str] | None:
    anchor = AuditAnchor.objects.order_by("-id").values_list("last_event_id", "last_hash").first()
    return tuple(anchor) if anchor else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def audit_check(*, trigger: str, anchors: list[tuple[int, str]] = ()) -> AuditCheck:
    """Walk the chain against `anchors` and the latest stored anchor; record the result
    (shown on the audit page)."""
    started = timezone.now()
    stored = latest_anchor()
    anchors = [*anchors, *([stored] if stored else [])]
    count, broken = 0, None
    for item in audit_verify(anchors):
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
