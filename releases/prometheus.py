"""The door to Prometheus: one instant query through its HTTP API (`/api/v1/query`)."""

from __future__ import annotations

import math

import requests


class PrometheusError(Exception):
    """No usable value: Prometheus did not answer, refused the query, or returned nothing."""


def instant_value(base_url: str, query: str, timeout: float = 10.0) -> float:
    """The query's value now: the first sample of a vector, or a scalar."""
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        response = requests.get(url, params={"query": query}, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise PrometheusError(f"Prometheus at {base_url} does not answer") from exc
    try:
        body = response.json()
    except ValueError as exc:
        raise PrometheusError(f"Prometheus answered HTTP {response.status_code}, not JSON") from exc
    if body.get("status") != "success":
        raise PrometheusError(
            f"Prometheus refused the query: {body.get('errorType', 'error')}: "
            f"{str(body.get('error', ''))[:200]}"
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
