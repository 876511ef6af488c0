"""The door to change management: a change request opened when a deployment to a
protected environment is requested, noted when it starts, closed with its outcome, and
read back (is it approved, what is its window).

Two kinds:

- `ServiceNow`: the Table API's `change_request` (POST to create, PATCH to note, implement,
  close or cancel, GET to read), Basic auth. States are ServiceNow's numbers (-5 new … 3
  closed, 4 canceled); `approval` is `requested`, `approved`, `rejected`, `not requested`;
  dates are `YYYY-MM-DD HH:MM:SS` in UTC.
- `SignedWebhook`: a JSON POST per event to one URL, signed with HMAC-SHA256 of the body
  (`X-Slipway-Signature: sha256=<hex>`, the secret shared with the receiver); the receiver
  answers the change as `{id, number, state, approved, planned_start, planned_end}`.

Every call goes through the egress door; a 4xx is the system's refusal (its message
kept), anything else that fails is "unreachable" and may be retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from doors import egress
from portal.core.errors import DoorError

DEADLINE = 15.0
MAX_BYTES = 1024 * 1024
SERVICENOW_TABLE = "/api/now/table/change_request"
SN_TIME = "%Y-%m-%d %H:%M:%S"
# ServiceNow's change states (the Table API's raw values).
SN_STATE = {"-5": "new", "-4": "assess", "-3": "authorize", "-2": "scheduled",
            "-1": "implement", "0": "review", "3": "closed", "4": "canceled"}  # fmt: skip
SN_IMPLEMENT, SN_CLOSED, SN_CANCELED = "-1", "3", "4"


class ChangeError(DoorError):
    """The change system could not be reached or answered nonsense (may be retried)."""

    retryable = True


class ChangeRefused(ChangeError):
    """The change system refused the request (a 4xx), with its own words."""

    retryable = False


@dataclass(frozen=True)
class Change:
    """A change request as the system holds it."""

    id: str
    number: str
    state: str  # new, assess, authorize, scheduled, implement, review, closed, canceled
    approval: str  # requested, approved, rejected, not requested
    planned_start: datetime | None
    planned_end: datetime | None

    @property
    def approved(self) -> bool:
        return self.approval == "approved"


@dataclass(frozen=True)
class ChangeRequest:
    """What Slipway asks for: a normal or emergency change with a planned window."""

    short_description: str
    description: str
    emergency: bool
    planned_start: datetime
    planned_end: datetime
    assignment_group: str = ""
    correlation_id: str = ""  # Slipway's deployment, so the system can link back


def _refusal(answer: egress.Answer) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.body[:200].decode("utf-8", "replace") or f"HTTP {answer.status}"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ": ".join(str(p) for p in (error.get("message"), error.get("detail")) if p)
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return f"HTTP {answer.status}"


def _checked(answer: egress.Answer) -> dict:
    if 400 <= answer.status < 500:
        raise ChangeRefused(f"HTTP {answer.status}: {_refusal(answer)}")
    if answer.status >= 300 or answer.truncated:
        raise ChangeError(f"the change system answered HTTP {answer.status}")
    try:
        return answer.json()
    except ValueError as exc:
        raise ChangeError("the change system answered something that is not JSON") from exc


def _sn_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, SN_TIME).replace(tzinfo=UTC)


def _iso_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ServiceNow:
    kind = "servicenow"

    def __init__(self, *, url: str, username: str, password: str) -> None:
        self.base = url.rstrip("/")
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {
            "Authorization": f"Basic {token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    def _call(self, method: str, path: str, body: dict | None = None) -> Change:
        try:
            answer = egress.request(
                method,
                self.base + path,
                deadline=DEADLINE,
                max_bytes=MAX_BYTES,
                body=json.dumps(body).encode() if body is not None else None,
                headers=self.headers,
                params={"sysparm_display_value": "false", "sysparm_exclude_reference_link": "true"},
            )
        except egress.EgressError as exc:
            raise ChangeError(f"ServiceNow unreachable: {exc}") from exc
        result = _checked(answer).get("result")
        if not isinstance(result, dict) or not result.get("sys_id"):
            raise ChangeError("ServiceNow answered without a change_request record")
        return Change(
            id=result["sys_id"],
            number=result.get("number", ""),
            state=SN_STATE.get(str(result.get("state", "")), str(result.get("state", ""))),
            approval=result.get("approval", ""),
            planned_start=_sn_time(result.get("start_date")),
            planned_end=_sn_time(result.get("end_date")),
        )

    def _record(self, change_id: str) -> str:
        return f"{SERVICENOW_TABLE}/{quote(change_id, safe='')}"

    def create(self, request: ChangeRequest) -> Change:
        body = {
            "type": "emergency" if request.emergency else "normal",
            "short_description": request.short_description,
            "description": request.description,
            "start_date": request.planned_start.astimezone(UTC).strftime(SN_TIME),
            "end_date": request.planned_end.astimezone(UTC).strftime(SN_TIME),
            "correlation_id": request.correlation_id,
            "correlation_display": "Slipway",
        }
        if request.assignment_group:
            body["assignment_group"] = request.assignment_group
        return self._call("POST", SERVICENOW_TABLE, body)

    def read(self, change_id: str) -> Change:
        return self._call("GET", self._record(change_id))

    def implement(self, change_id: str, note: str) -> Change:
        body = {"state": SN_IMPLEMENT, "work_notes": note}
        return self._call("PATCH", self._record(change_id), body)

    def note(self, change_id: str, note: str) -> Change:
        return self._call("PATCH", self._record(change_id), {"work_notes": note})

    def close(self, change_id: str, *, successful: bool, note: str) -> Change:
        body = {
            "state": SN_CLOSED,
            "close_code": "successful" if successful else "unsuccessful",
            "close_notes": note,
        }
        return self._call("PATCH", self._record(change_id), body)

    def cancel(self, change_id: str, note: str) -> Change:
        return self._call(
            "PATCH", self._record(change_id), {"state": SN_CANCELED, "work_notes": note}
        )


def signature(secret: str, body: bytes) -> str:
    """The webhook's signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class SignedWebhook:
    kind = "webhook"

    def __init__(self, *, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    def _send(self, event: str, **fields) -> Change:
        body = json.dumps({"event": event, **fields}, sort_keys=True, default=str).encode()
        headers = {"Content-Type": "application/json",
                   "X-Slipway-Signature": signature(self.secret, body)}  # fmt: skip
        try:
            answer = egress.request(
                "POST", self.url, deadline=DEADLINE, max_bytes=MAX_BYTES, body=body, headers=headers
            )
        except egress.EgressError as exc:
            raise ChangeError(f"the change webhook is unreachable: {exc}") from exc
        change = _checked(answer)
        try:
            return Change(
                id=str(change["id"]),
                number=str(change.get("number") or change["id"]),
                state=str(change.get("state", "")),
                approval="approved" if change.get("approved") else str(change.get("approval", "")),
                planned_start=_iso_time(change.get("planned_start")),
                planned_end=_iso_time(change.get("planned_end")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChangeError("the change webhook answered without a change") from exc

    def create(self, request: ChangeRequest) -> Change:
        return self._send(
            "create",
            short_description=request.short_description,
            description=request.description,
            emergency=request.emergency,
            planned_start=request.planned_start.isoformat(),
            planned_end=request.planned_end.isoformat(),
            correlation_id=request.correlation_id,
        )

    def read(self, change_id: str) -> Change:
        return self._send("read", id=change_id)

    def implement(self, change_id: str, note: str) -> Change:
        return self._send("implement", id=change_id, note=note)

    def note(self, change_id: str, note: str) -> Change:
        return self._send("note", id=change_id, note=note)

    def close(self, change_id: str, *, successful: bool, note: str) -> Change:
        return self._send("close", id=change_id, successful=successful, note=note)

    def cancel(self, change_id: str, note: str) -> Change:
        return self._send("cancel", id=change_id, note=note)


ChangeSystemDoor = ServiceNow | SignedWebhook
