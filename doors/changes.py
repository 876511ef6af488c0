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
- `JiraServiceManagement`: a change is a request of the service desk's change request type
  (`POST /rest/servicedeskapi/request`, the planned window and change type in its fields);
  approval is its approvals' final decisions (`GET …/request/{key}/approval`), its state
  and window the issue's status and fields (`GET /rest/api/2/issue/{key}`); it moves by the
  workflow's transitions, found by the status they lead to (`GET`/`POST …/transitions`),
  with Slipway's note as a comment. Basic auth (an account's e-mail and API token).

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

    @property
    def rejected(self) -> bool:
        """The board said no: this change will not be approved."""
        return self.approval == "rejected"


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
    if isinstance(body, dict) and (body.get("errorMessages") or body.get("errors")):
        # Jira: {"errorMessages": [...], "errors": {"field": "message"}}
        said = [str(m) for m in body.get("errorMessages") or []]
        errors = body.get("errors")
        if isinstance(errors, dict):
            said += [f"{field}: {message}" for field, message in errors.items()]
        return "; ".join(said)
    if isinstance(body, dict) and body.get("errorMessage"):  # Jira Service Management
        return str(body["errorMessage"])
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
    if answer.status == 204:  # Jira's transitions answer nothing
        return {}
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


JSM_REQUEST = "/rest/servicedeskapi/request"
JIRA_ISSUE = "/rest/api/2/issue"
JIRA_TIME = "%Y-%m-%dT%H:%M:%S.%f%z"
# The statuses of Jira Service Management's change workflow Slipway moves a change to
# (a site may name its own: JiraSettings.statuses).
JSM_STATUSES = {"implement": "Implementing", "successful": "Completed",
                "unsuccessful": "Failed", "canceled": "Canceled"}  # fmt: skip


@dataclass(frozen=True)
class JiraSettings:
    """Where changes go in a Jira Service Management site: its ids are the site's own."""

    service_desk_id: str
    request_type_id: str
    planned_start_field: str  # e.g. customfield_10040, "Planned start"
    planned_end_field: str  # e.g. customfield_10041, "Planned end"
    change_type_field: str = ""  # e.g. customfield_10005, "Change type": Normal / Emergency
    statuses: tuple[tuple[str, str], ...] = tuple(JSM_STATUSES.items())

    def status(self, move: str) -> str:
        return dict(self.statuses)[move]


def _jira_time(value) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), JIRA_TIME).astimezone(UTC)
    except ValueError as exc:
        raise ChangeError(f"Jira answered a date Slipway cannot read: {value!r}") from exc


def _object(value) -> dict:
    """A JSON object Jira answered, or an empty one where it answered something else."""
    return value if isinstance(value, dict) else {}


def _objects(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _approval(decisions: list[str]) -> str:
    """One word for the request's approvals, as ServiceNow says it: any declined → rejected;
    any still pending → requested; all approved → approved; none → not requested."""
    if "declined" in decisions:
        return "rejected"
    if "pending" in decisions:
        return "requested"
    return "approved" if decisions else "not requested"


class JiraServiceManagement:
    kind = "jira"

    def __init__(self, *, url: str, username: str, token: str, settings: JiraSettings) -> None:
        self.base, self.settings = url.rstrip("/"), settings
        basic = base64.b64encode(f"{username}:{token}".encode()).decode()
        self.headers = {"Authorization": f"Basic {basic}", "Accept": "application/json",
                        "Content-Type": "application/json"}  # fmt: skip

    def _call(self, method: str, path: str, body: dict | None = None, params=None) -> dict:
        try:
            answer = egress.request(
                method, self.base + path, deadline=DEADLINE, max_bytes=MAX_BYTES, params=params,
                body=json.dumps(body).encode() if body is not None else None,
                headers=self.headers,
            )  # fmt: skip
        except egress.EgressError as exc:
            raise ChangeError(f"Jira unreachable: {exc}") from exc
        found = _checked(answer)
        if not isinstance(found, dict):
            raise ChangeError("Jira answered something that is not an object")
        return found

    def _key(self, key: str) -> str:
        return quote(key, safe="")

    def create(self, request: ChangeRequest) -> Change:
        when = lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")  # noqa: E731
        fields = {
            "summary": request.short_description,
            "description": f"{request.description}\n\nCorrelation: {request.correlation_id}",
            self.settings.planned_start_field: when(request.planned_start),
            self.settings.planned_end_field: when(request.planned_end),
        }
        if self.settings.change_type_field:
            fields[self.settings.change_type_field] = {
                "value": "Emergency" if request.emergency else "Normal"
            }
        created = self._call("POST", JSM_REQUEST, {
            "serviceDeskId": self.settings.service_desk_id,
            "requestTypeId": self.settings.request_type_id,
            "requestFieldValues": fields,
        })  # fmt: skip
        if not created.get("issueKey"):
            raise ChangeError("Jira answered without the request's issueKey")
        return self.read(created["issueKey"])

    def read(self, change_id: str) -> Change:
        start, end = self.settings.planned_start_field, self.settings.planned_end_field
        issue = self._call("GET", f"{JIRA_ISSUE}/{self._key(change_id)}",
                           params={"fields": f"status,{start},{end}"})  # fmt: skip
        fields = issue.get("fields")
        if not isinstance(fields, dict) or not issue.get("key"):
            raise ChangeError(f"Jira answered issue {change_id} without its fields")
        approvals = self._call("GET", f"{JSM_REQUEST}/{self._key(change_id)}/approval")
        decisions = [str(a.get("finalDecision", "")) for a in _objects(approvals.get("values"))]
        return Change(
            id=issue["key"],
            number=issue["key"],
            state=str(_object(fields.get("status")).get("name", "")),
            approval=_approval(decisions),
            planned_start=_jira_time(fields.get(start)),
            planned_end=_jira_time(fields.get(end)),
        )

    def _move(self, change_id: str, move: str, note: str) -> Change:
        """Take the workflow's transition that leads to `move`'s status, with a comment."""
        wanted = self.settings.status(move)
        path = f"{JIRA_ISSUE}/{self._key(change_id)}/transitions"
        offered = [t for t in _objects(self._call("GET", path).get("transitions")) if t.get("id")]
        found = next(
            (t for t in offered if str(_object(t.get("to")).get("name", "")).lower()
             == wanted.lower()), None,
        )  # fmt: skip
        if found is None:
            current = self.read(change_id)
            if current.state.lower() == wanted.lower():
                return current  # moved there already (by a person, or an earlier attempt)
            names = ", ".join(f"{t.get('name')} → {_object(t.get('to')).get('name')}"
                              for t in offered) or "none"  # fmt: skip
            raise ChangeRefused(
                f"Jira offers {change_id} no transition to {wanted} now (offered: {names})"
            )
        self._call("POST", path, {"transition": {"id": str(found["id"])},
                                  "update": {"comment": [{"add": {"body": note}}]}})  # fmt: skip
        return self.read(change_id)

    def implement(self, change_id: str, note: str) -> Change:
        return self._move(change_id, "implement", note)

    def note(self, change_id: str, note: str) -> Change:
        self._call("POST", f"{JSM_REQUEST}/{self._key(change_id)}/comment",
                   {"body": note, "public": False})  # fmt: skip
        return self.read(change_id)

    def close(self, change_id: str, *, successful: bool, note: str) -> Change:
        return self._move(change_id, "successful" if successful else "unsuccessful", note)

    def cancel(self, change_id: str, note: str) -> Change:
        return self._move(change_id, "canceled", note)


ChangeSystemDoor = ServiceNow | SignedWebhook | JiraServiceManagement
