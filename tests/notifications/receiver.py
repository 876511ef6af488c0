"""A local HTTP receiver that checks each channel format as its real service would:
the webhook's HMAC signature and timestamp, DingTalk's `timestamp` + `sign` query, and
the JSON shape Slack, DingTalk and WeCom accept. It answers from a script of responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.support.http import QuietHandler


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secrets: dict[str, str] = field(default_factory=dict)  # path -> secret to check
    script: list[tuple[int, bytes]] = field(default_factory=list)  # answers, then 200 {}
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    url: str = ""  # set once it serves (tests.support.http.serving)

    def handler(self) -> type[QuietHandler]:
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(
                    parts.path,
                    {k: v[0] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                owner.received.append(got)
                owner.check(got)
                self.answer(*(owner.script.pop(0) if owner.script else (200, b"{}")))

        return Handler

    def check(self, got: Received) -> None:
        secret = self.secrets.get(got.path, "")
        body = got.json
        if got.path.startswith("/hook"):
            timestamp = got.headers.get("x-slipway-timestamp", "")
            expected = hmac.new(
                secret.encode(), f"{timestamp}.".encode() + got.body, hashlib.sha256
            ).hexdigest()
            if got.headers.get("x-slipway-signature") != f"sha256={expected}":
                self.problems.append(f"{got.path}: bad webhook signature")
            if "event" not in body or "summary" not in body:
                self.problems.append(f"{got.path}: webhook body lacks event/summary")
        elif got.path.startswith("/slack"):
            if not isinstance(body.get("text"), str):
                self.problems.append(f"{got.path}: Slack wants a text")
        elif got.path.startswith("/dingtalk"):
            if secret:
                timestamp = got.query.get("timestamp", "")
                digest = hmac.new(
                    secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256
                ).digest()
                if got.query.get("sign") != base64.b64encode(digest).decode():
                    self.problems.append(f"{got.path}: bad DingTalk sign")
            if body.get("msgtype") != "markdown" or "text" not in body.get("markdown", {}):
                self.problems.append(f"{got.path}: DingTalk markdown body expected")
        elif got.path.startswith("/wecom") and (
            body.get("msgtype") != "markdown" or "content" not in body.get("markdown", {})
        ):
            self.problems.append(f"{got.path}: WeCom markdown body expected")
