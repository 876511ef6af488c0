"""Is the audit chain intact? Walk it (keys, links, hashes), publish its head as anchors,
and record each walk (beat daily, `verify_audit`, an admin's button)."""

from __future__ import annotations

import hmac
from collections import namedtuple
from collections.abc import Iterator
from dataclasses import dataclass

import structlog
from django.db.models import CharField, Func
from django.utils import timezone

from portal.audit.chain import GENESIS_HASH, audit_keys, chain_hash
from portal.audit.models import AuditAnchor, AuditCheck, AuditEvent

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
