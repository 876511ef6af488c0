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
import re
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

from notifications.models import ChannelKind
from portal.core import sizes

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


# Text in a chat message came from people (override reasons, comments, refs, names) or
# through them (a build's reason): it must not mention anyone or carry a live link.
_URL = re.compile(r"\b(https?|ftp|wss?)://", re.I)
_WWW = re.compile(r"\bwww\.", re.I)
# Look-alikes for the characters chat markup is made of: the text reads the same.
# (fullwidth [ ] < > @ and a modifier-letter grave accent)
_MARKDOWN = str.maketrans(
    {"[": "\uff3b", "]": "\uff3d", "<": "\uff1c", ">": "\uff1e", "@": "\uff20", "`": "\u02cb"}
)


def _defang(text: str) -> str:
    """`https://x` → `hxxps[:]//x`: the usual way to show an address without a link."""
    text = _URL.sub(lambda m: m.group(1).replace("t", "x", 2) + "[:]//", text)
    return _WWW.sub("www[.]", text)


def chat_text(kind: str, text: str) -> str:
    """People's text made inert for a chat's markup: Slack's `<!channel>`, `<url|label>`
    and `@here`; DingTalk's and WeCom's markdown links and `<@user>` mentions."""
    text = _defang(text)
    if kind == ChannelKind.SLACK:
        # Slack's own escaping; what is left of a mention is plain text.
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return text.replace("@", "\uff20")
    if kind in (ChannelKind.DINGTALK, ChannelKind.WECOM):
        return text.translate(_MARKDOWN)
    return text


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
    title, summary = chat_text(kind, message.title), chat_text(kind, message.summary)
    if kind == ChannelKind.SLACK:
        link = f" <{message.link}|Open in Slipway>" if message.link else ""
        return Request(url, _json({"text": f"*{title}*\n{summary}{link}"}), headers)
    markdown = f"### {title}\n{summary}" + (
        f"\n\n[Open in Slipway]({message.link})" if message.link else ""
    )
    if kind == ChannelKind.DINGTALK:
        if secret:
            timestamp_ms = str(int(now * 1000))
            separator = "&" if "?" in url else "?"
            sign = dingtalk_sign(secret, timestamp_ms)
            url = f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"
        body = {"msgtype": "markdown", "markdown": {"title": title, "text": markdown}}
        return Request(url, _json(body), headers)
    if kind == ChannelKind.WECOM:
        return Request(
            url, _json({"msgtype": "markdown", "markdown": {"content": markdown}}), headers
        )
    raise ValueError(f"unknown channel kind {kind!r}")


def accepted(kind: str, status: int, body: bytes) -> tuple[bool, str]:
    """Whether the receiver took the message, and why not. DingTalk and WeCom answer 200
    with an `errcode` even when they refuse it. A redirect is not followed: the receiver's
    address must be the one configured."""
    if 300 <= status < 400:
        return False, f"HTTP {status}: redirect not followed"
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if kind in (ChannelKind.DINGTALK, ChannelKind.WECOM):
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            return False, "answer is not JSON"
        if answer.get("errcode", 0) != 0:
            return (
                False,
                f"errcode {answer.get('errcode')}: {str(answer.get('errmsg', ''))[: sizes.QUOTE]}",
            )
    return True, ""
