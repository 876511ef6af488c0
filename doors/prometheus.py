"""The door to Prometheus: one instant query through its HTTP API (`/api/v1/query`),
sent through the egress door (allowed addresses, no redirect, one deadline, a body cap).
Messages never carry the URL (it may hold credentials)."""

from __future__ import annotations

import json
import math

from doors import egress
from portal.core import sizes
from portal.core.errors import DoorError

ANSWER_BYTES = 1024 * 1024


class PrometheusError(DoorError):
    """No usable value: Prometheus did not answer, refused the query, or returned nothing."""


def instant_value(base_url: str, query: str, timeout: float = 10.0) -> float:
    """The query's value now: the first sample of a vector, or a scalar."""
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        answer = egress.request(
            "GET", url, params={"query": query}, deadline=timeout, max_bytes=ANSWER_BYTES
        )
    except egress.EgressError as exc:
        raise PrometheusError(f"Prometheus did not answer: {exc}") from exc
    if 300 <= answer.status < 400:
        raise PrometheusError(f"Prometheus answered HTTP {answer.status}: redirect not followed")
    if answer.truncated:
        raise PrometheusError(f"Prometheus's answer is larger than {ANSWER_BYTES} bytes")
    try:
        body = json.loads(answer.body)
    except ValueError as exc:
        raise PrometheusError(f"Prometheus answered HTTP {answer.status}, not JSON") from exc
    if not isinstance(body, dict):
        raise PrometheusError(f"Prometheus answered HTTP {answer.status} with unexpected JSON")
    if body.get("status") != "success":
        raise PrometheusError(
            f"Prometheus refused the query: {body.get('errorType', 'error')}: "
            f"{str(body.get('error', ''))[: sizes.QUOTE]}"
        )
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        if not result:
            raise PrometheusError("the query returned no data")
        sample = result[0]["value"]
    elif kind == "scalar":
        sample = result
    else:
        raise PrometheusError(f"the query returned a {kind}, not one value (use an instant vector)")
    value = float(sample[1])
    if math.isnan(value):
        raise PrometheusError("the query returned NaN (no traffic in the window?)")
    return value
