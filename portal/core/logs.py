"""Logs as JSON lines (structlog), one event per request and per task, each carrying the
request id of the click or call that started it, and no secret.

The request id set by the web request travels with every Celery task it sends (a message
header) and every task those send in turn, so the log lines and audit events of a whole
release, from the click to the rollout, share it.
"""

from __future__ import annotations

import contextvars
import re
import time
import uuid

import structlog
from celery.signals import task_postrun, task_prerun

# The request id of what is being handled now (a web request, or a task it led to).
REQUEST_ID = contextvars.ContextVar("slipway_request_id", default="")
HEADER = "slipway_request_id"

MASK = "********"
# Shapes of secrets that must never reach a log line, whatever logged them.
SECRET_PATTERNS = [
    re.compile(r"gAAAAA[\w-]{20,}={0,2}"),  # Fernet ciphertext (stored secrets)
    re.compile(r"slw_[\w-]{16,}"),  # Slipway API tokens
    re.compile(r"(?i)(bearer\s+)[\w.~+/-]{8,}=*"),
    re.compile(r"(?i)((?:token|password|client-key-data|client-certificate-data)\s*[:=]\s*)\S+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"),
]
# Values decrypted in this process (kubeconfig tokens, Jenkins tokens): never logged.
_KNOWN_SECRETS: set[str] = set()


def remember_secret(value: str) -> None:
    """Called where a stored secret is decrypted: its sensitive parts are masked if they
    ever reach a log line."""
    for line in value.splitlines() or [value]:
        key, sep, rest = line.partition(":")
        candidate = (
            rest.strip()
            if sep and key.strip().lower().endswith(("token", "password", "data"))
            else ""
        )
        if len(candidate) >= 8:
            _KNOWN_SECRETS.add(candidate)
    if "\n" not in value and len(value) >= 8:
        _KNOWN_SECRETS.add(value)


def scrub(text: str) -> str:
    for secret in _KNOWN_SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def scrub_value(value, depth: int = 0):
    """Scrub every string inside `value`, however nested (dicts, lists, tuples, sets), and
    the text of anything else that would be rendered (an exception, an object)."""
    if isinstance(value, str):
        return scrub(value)
    if depth > 20:
        return MASK  # deeper than any log event of ours: not worth the risk
    if isinstance(value, dict):
        return {scrub_value(k, depth + 1): scrub_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub_value(item, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


def _scrub_event(logger, method, event: dict) -> dict:
    return {key: scrub_value(value) for key, value in event.items()}


def _add_request_id(logger, method, event: dict) -> dict:
    request_id = REQUEST_ID.get()
    if request_id and "request_id" not in event:
        event["request_id"] = request_id
    return event


SHARED_PROCESSORS = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _add_request_id,
]


def logging_config(level: str, fmt: str) -> dict:
    """Django's LOGGING: every log record (ours, Django's, Celery's) through structlog."""
    renderer = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": SHARED_PROCESSORS,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    _scrub_event,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "kubernetes": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "axes": {"level": "WARNING"},
            # One event per request comes from RequestLogMiddleware instead.
            "django.server": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("slipway")


# -- Celery: carry the request id, one event per task ------------------------------


def new_request_id() -> str:
    return uuid.uuid4().hex


def task_headers() -> dict:
    """Headers to send with a task, so it (and what it sends) keeps the request id."""
    request_id = REQUEST_ID.get()
    return {HEADER: request_id} if request_id else {}


_task_started: dict[str, float] = {}


def _task_prerun(task_id=None, task=None, **kwargs) -> None:
    request_id = getattr(task.request, HEADER, None) or (task.request.headers or {}).get(HEADER, "")
    REQUEST_ID.set(request_id or "")
    _task_started[task_id] = time.monotonic()


def _task_postrun(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    log.info(
        "task",
        task=task.name,
        task_id=task_id,
        state=state,
        duration_ms=round((time.monotonic() - started) * 1000, 1) if started else None,
        retries=task.request.retries,
    )
    REQUEST_ID.set("")


def connect_celery_signals() -> None:
    task_prerun.connect(_task_prerun, weak=False, dispatch_uid="slipway-task-prerun")
    task_postrun.connect(_task_postrun, weak=False, dispatch_uid="slipway-task-postrun")
