"""Small tasks of the core: a health ping that proves a worker answers."""

from celery import shared_task


@shared_task(
    name="portal.ping",
    queue="default",
    soft_time_limit=10,
    time_limit=20,
    acks_late=True,
    reject_on_worker_lost=True,
)
def ping(value: str) -> str:
    """Answer with the value and the worker's database, so a test sees a live worker."""
    from django.db import connection

    return f"pong:{value}:{connection.settings_dict['NAME']}"
