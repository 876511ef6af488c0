"""Small tasks of the core: a health ping that proves a worker answers, and housekeeping."""

from celery import shared_task
from django.db import connection

from portal.access.offboarding import ldap_offboarding_sync
from portal.audit.verification import audit_anchor_publish, audit_check
from portal.catalog.as_code import source_sync
from portal.catalog.models import CatalogSource
from portal.core import queues
from portal.core.queues import Task
from portal.web.idempotency import idempotency_forget_expired


@shared_task(
    name=Task.PING,
    queue=queues.DEFAULT,
    soft_time_limit=10,
    time_limit=20,
    acks_late=True,
    reject_on_worker_lost=True,
)
def ping(value: str) -> str:
    """Answer with the value and the worker's database, so a test sees a live worker."""
    return f"pong:{value}:{connection.settings_dict['NAME']}"


@shared_task(
    name=Task.FORGET_IDEMPOTENCY_KEYS, queue=queues.DEFAULT, soft_time_limit=60, time_limit=90
)
def forget_idempotency_keys() -> int:
    """Hourly: forget Idempotency-Keys (and form tokens) older than their retention."""
    return idempotency_forget_expired()


@shared_task(name=Task.VERIFY_AUDIT, queue=queues.DEFAULT, soft_time_limit=3600, time_limit=3700)
def verify_audit(trigger: str = "beat") -> dict:
    """Daily (beat) and on an admin's request: walk the audit chain up to (at least) the
    latest published anchor, record the result."""
    check = audit_check(trigger=trigger)
    return {"ok": check.ok, "events": check.events, "broken_event_id": check.broken_event_id}


@shared_task(name=Task.AUDIT_ANCHOR, queue=queues.DEFAULT, soft_time_limit=60, time_limit=90)
def audit_anchor() -> dict:
    """Publish the audit chain's head (count, last id and hash): to the log, where it lives
    outside the database, and as an append-only anchor row that every verification checks
    the chain still reaches. /metrics shows the same head."""
    return audit_anchor_publish()


@shared_task(name=Task.LDAP_OFFBOARDING, queue=queues.DEFAULT, soft_time_limit=240, time_limit=300)
def ldap_offboarding() -> dict[str, int]:
    """Every SLIPWAY_LDAP_SYNC_SECONDS: read the directory again for LDAP accounts with a
    live token or session (and all of them daily); offboard who left (portal/ldap.py)."""
    return ldap_offboarding_sync()


@shared_task(
    bind=True, name=Task.CATALOG_SYNC, queue=queues.DEFAULT, soft_time_limit=600, time_limit=660,
    max_retries=3,
)  # fmt: skip
def catalog_sync(self, source_id: int) -> dict:
    """Sync one catalog source (a push, or the schedule): every repository's newest
    commit, applied as one change; a repository that fails is reported, not retried."""
    source = CatalogSource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {"skipped": source_id}
    plan = source_sync(source)
    return {"source": source.name, "changes": len([c for c in plan.changes
                                                   if c.action != "unchanged"]),
            "errors": len(plan.errors)}  # fmt: skip


@shared_task(name=Task.CATALOG_SYNC_ALL, queue=queues.DEFAULT, soft_time_limit=60, time_limit=90)
def catalog_sync_all() -> int:
    """Beat: a sync per enabled source, each its own task."""
    sources = list(CatalogSource.objects.filter(enabled=True).values_list("pk", flat=True))
    for pk in sources:
        catalog_sync.delay(pk)
    return len(sources)
