"""The Celery application: Redis broker, JSON messages, separate build/deploy queues."""

import os

from celery import Celery
from kombu import Exchange, Queue

from portal.core import queues
from portal.core.logs import connect_celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("slipway")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue its own exchange and routing key, so a task lands in exactly one queue.
app.conf.task_queues = [Queue(name, Exchange(name), routing_key=name) for name in queues.ALL]
app.conf.task_default_queue = queues.DEFAULT
app.conf.task_default_exchange = queues.DEFAULT
app.conf.task_default_routing_key = queues.DEFAULT
app.autodiscover_tasks()
connect_celery_signals()
