"""The REST API, as the CLI uses it: bearer token, an Idempotency-Key on every POST (the
same key on each retry, so a retried request never acts twice), retries with backoff on
connection errors and 502/503/504, and problem details turned into one clear message."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

RETRIES = 4


class ApiError(Exception):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Client:
    def __init__(self, url: str, token: str, timeout: float = 30.0):
        if not url:
            raise ApiError("No portal URL: run `slipway login --url https://…` or set SLIPWAY_URL.")
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "slipway-cli"
        self.timeout = timeout

    def _send(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        url = path if path.startswith("http") else f"{self.url}{path}"
        for attempt in range(RETRIES + 1):
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=self.timeout, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == RETRIES:
                    raise ApiError(f"{self.url} does not answer ({type(exc).__name__})") from exc
            else:
                if response.status_code not in (502, 503, 504) or attempt == RETRIES:
                    return response
            time.sleep(min(0.5 * 2**attempt, 8))
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, **kwargs) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(_problem(response), response.status_code)
        if "json" in response.headers.get("Content-Type", ""):
            return response.json()
        return response.text

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.request("POST", path, json=body or {})

    def pages(self, path: str, **params):
        """Every item of a paged list, following `next`."""
        page = self.get(path, **params)
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.request("GET", page["next"])


def _problem(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    detail = body.get("detail") or body.get("title") or ""
    errors = body.get("errors") or {}
    fields = "; ".join(
        f"{field}: {' '.join(map(str, messages)) if isinstance(messages, list) else messages}"
        for field, messages in errors.items()
    )
    return f"HTTP {response.status_code}: {detail}" + (f" ({fields})" if fields else "")
