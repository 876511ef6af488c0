"""Each channel kind's request: its JSON body and how it is signed.

- webhook: Slipway's own JSON; `X-Slipway-Timestamp` (Unix seconds) and
  `X-Slipway-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>`,
  so a receiver can refuse replays older than a few minutes.
- Slack incoming webhook: `{"text": …}` with a `<url|label>` link.
- DingTalk robot: `{"msgtype": "markdown", …}`; with a signing secret, `timestamp` (ms)
  and `sign` = base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")) on the URL, as
  DingTalk's "加签" security setting checks them.
- WeCom (企业微信) group robot: `{"msgtype": "markdown", …}`; the key is in the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

from notifications.models import ChannelKind

SIGNATURE_HEADER = "X-Slipway-Signature"
TIMESTAMP_HEADER = "X-Slipway-Timestamp"
EVENT_HEADER = "X-Slipway-Event"


@dataclass(frozen=True)
class Message:
    """What happened, in words and as data: the same for every channel kind."""

    kind: str  # EventKind
    title: str
    summary: str
    link: str
    data: dict


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode())


def _json(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def build_request(
    kind: str, url: str, secret: str, message: Message, now: float | None = None
) -> Request:
    now = time.time() if now is None else now
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Slipway"}
    if kind == ChannelKind.WEBHOOK:
        body = _json(
            {"event": message.kind, "title": message.title, "summary": message.summary,
             "url": message.link, **message.data}
        )  # fmt: skip
        timestamp = str(int(now))
        headers |= {TIMESTAMP_HEADER: timestamp, EVENT_HEADER: message.kind}
        if secret:
            headers[SIGNATURE_HEADER] = webhook_signature(secret, timestamp, body)
        return Request(url, body, headers)
    if kind == ChannelKind.SLACK:
        link = f" <{message.link}|Open in Slipway>" if message.link else ""
        return Request(url, _json({"text": f"*{message.title}*\n{message.summary}{link}"}), headers)
    markdown = f"### {message.title}\n{message.summary}" + (
        f"\n\n[Open in Slipway]({message.link})" if message.link else ""
    )
    if kind == ChannelKind.DINGTALK:
        if secret:
            timestamp_ms = str(int(now * 1000))
            separator = "&" if "?" in url else "?"
            sign = dingtalk_sign(secret, timestamp_ms)
            url = f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"
        body = {"msgtype": "markdown", "markdown": {"title": message.title, "text": markdown}}
        return Request(url, _json(body), headers)
    if kind == ChannelKind.WECOM:
        return Request(
            url, _json({"msgtype": "markdown", "markdown": {"content": markdown}}), headers
        )
    raise ValueError(f"unknown channel kind {kind!r}")


def accepted(kind: str, status: int, body: bytes) -> tuple[bool, str]:
    """Whether the receiver took the message, and why not. DingTalk and WeCom answer 200
    with an `errcode` even when they refuse it."""
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if kind in (ChannelKind.DINGTALK, ChannelKind.WECOM):
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            return False, "answer is not JSON"
        if answer.get("errcode", 0) != 0:
            return False, f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[:200]}"
    return True, ""
