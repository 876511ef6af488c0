"""The CLI's HTTP client: a POST retried after a dropped connection carries the same
Idempotency-Key, so the portal acts once; problem details become one clear message."""

from __future__ import annotations

import json

import pytest

from slipway_cli import client as cli_client
from slipway_cli.client import ApiError, Client
from tests.support.http import QuietHandler, serving


@pytest.fixture
def flaky(monkeypatch):
    monkeypatch.setattr(cli_client.time, "sleep", lambda s: None)
    seen: list[dict] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(dict(self.headers))
            if len(seen) == 1:
                self.close_connection = True  # drop it: no answer at all
                return
            if self.path == "/refused":
                problem = {"type": "x", "title": "Conflict", "status": 409,
                           "detail": "Beta runs release #11", "errors": {}}  # fmt: skip
                self.answer(409, json.dumps(problem).encode(), "application/problem+json")
            else:
                self.answer(201, b'{"id": 7}')

    with serving(Handler) as url:
        yield url, seen


def test_a_retried_post_sends_the_same_idempotency_key(flaky):
    url, seen = flaky
    assert Client(url, "slw_x").post("/made", {"ref": "main"}) == {"id": 7}
    assert len(seen) == 2
    keys = {headers["Idempotency-Key"] for headers in seen}
    assert len(keys) == 1 and len(keys.pop()) == 36
    assert seen[0]["Authorization"] == "Bearer slw_x"


def test_a_problem_becomes_one_message(flaky):
    url, _ = flaky
    with pytest.raises(ApiError, match=r"^HTTP 409: Beta runs release #11$") as refused:
        Client(url, "slw_x").post("/refused")
    assert refused.value.status == 409
