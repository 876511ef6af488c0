"""A local Jira Service Management for tests and trying Slipway's Jira change kind: a real
HTTP server answering the part of JSM's and Jira's REST APIs a change request lives by,
with their shapes and error bodies, and checking every request it gets.

  POST /rest/servicedeskapi/request                     create a request (a change)
  GET  /rest/servicedeskapi/request/{key}/approval      its approvals (finalDecision)
  POST /rest/servicedeskapi/request/{key}/comment       a comment {body, public}
  GET  /rest/api/2/issue/{key}?fields=a,b               the issue's status and fields
  GET  /rest/api/2/issue/{key}/transitions              transitions offered now
  POST /rest/api/2/issue/{key}/transitions              take one (answers 204)

Errors answer like Jira (`{"errorMessages": [...], "errors": {...}}`) and like JSM
(`{"errorMessage": "...", "i18nErrorMessage": {...}}`). Basic auth: e-mail and API token.

The change workflow (JSM's ITSM change statuses): a normal change waits in *Awaiting CAB
approval* with one pending approval; approved it goes to *Awaiting implementation*
(declined: *Declined*); then *Implementing*, then *Completed* or *Failed*; *Canceled*
from any status before implementing. An emergency change (change type Emergency) is
approved at once.

Control (what a change manager would do in Jira):
  POST /_receiver/requests/{key}/approve | decline
  POST /_receiver/requests/{key}/window {"start", "end"}   (Jira's date-time format)
  POST /_receiver/refuse {"message": "…"}                  refuse the next create
  GET  /_receiver/issues, GET /_receiver/requests          what it holds and received

    python -m devtools.jsm_receiver --port 8093 --email slipway@example.com --token t
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from devtools.loopback import serve_in_thread

SERVICE_DESK_ID, REQUEST_TYPE_ID = "4", "38"
PLANNED_START, PLANNED_END, CHANGE_TYPE = (
    "customfield_10040",
    "customfield_10041",
    "customfield_10005",
)
JIRA_TIME = "%Y-%m-%dT%H:%M:%S.%f%z"
CHANGE_TYPES = ("Standard", "Normal", "Emergency")
KNOWN_FIELDS = {"summary", "description", PLANNED_START, PLANNED_END, CHANGE_TYPE}
# status: [(transition id, name, to status)]
WORKFLOW = {
    "Awaiting CAB approval": [("21", "Cancel", "Canceled")],
    "Awaiting implementation": [("31", "Implement", "Implementing"), ("21", "Cancel", "Canceled")],
    "Implementing": [("41", "Complete", "Completed"), ("51", "Mark as failed", "Failed")],
}
STATUS_IDS = {
    name: str(10100 + i)
    for i, name in enumerate(
        (
            "Awaiting CAB approval",
            "Awaiting implementation",
            "Implementing",
            "Completed",
            "Failed",
            "Canceled",
            "Declined",
        )
    )
}
CATEGORY = {
    "Completed": "done",
    "Failed": "done",
    "Canceled": "done",
    "Declined": "done",
    "Implementing": "indeterminate",
}


class JiraRefusal(Exception):
    """An error answered in Jira's platform shape."""

    def __init__(self, status: int, *messages: str, errors: dict | None = None) -> None:
        super().__init__("; ".join(messages))
        self.status, self.body = status, {"errorMessages": list(messages), "errors": errors or {}}


class DeskRefusal(JiraRefusal):
    """An error answered in Jira Service Management's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.body = {
            "errorMessage": message,
            "i18nErrorMessage": {"i18nKey": "sd.request.error", "parameters": []},
        }


def _time(value, field: str) -> datetime:
    try:
        return datetime.strptime(str(value), JIRA_TIME)
    except ValueError as exc:
        raise DeskRefusal(
            400, f"{field}: '{value}' is not a date-time like 2026-12-03T18:00:00.000+0000"
        ) from exc


def _date(moment: datetime) -> dict:
    return {
        "iso8601": moment.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "jira": moment.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
        "friendly": moment.strftime("%d/%b/%y %I:%M %p"),
        "epochMillis": int(moment.timestamp() * 1000),
    }


class Desk:
    """What the receiver holds: issues by key, every request received, one refusal."""

    def __init__(self, *, email: str, token: str) -> None:
        self.email, self.token = email, token
        self.issues: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.refuse_next = ""
        self.lock = threading.Lock()
        self.counter = 0

    def issue(self, key: str) -> dict:
        if key not in self.issues:
            raise JiraRefusal(404, "Issue does not exist or you do not have permission to see it.")
        return self.issues[key]

    def create(self, body: dict) -> dict:
        if str(body.get("serviceDeskId")) != SERVICE_DESK_ID:
            raise DeskRefusal(
                404, f"The service project with id: {body.get('serviceDeskId')} does not exist"
            )
        if str(body.get("requestTypeId")) != REQUEST_TYPE_ID:
            raise DeskRefusal(
                400,
                f"The request type {body.get('requestTypeId')} does not exist "
                f"in service project {SERVICE_DESK_ID}",
            )
        fields = body.get("requestFieldValues")
        if not isinstance(fields, dict):
            raise DeskRefusal(400, "requestFieldValues must be an object")
        unknown = sorted(set(fields) - KNOWN_FIELDS)
        if unknown:
            raise JiraRefusal(
                400,
                errors={
                    f: f"Field '{f}' cannot be set. It is not on the "
                    "appropriate screen, or unknown."
                    for f in unknown
                },
            )
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip() or len(summary) > 255:
            raise JiraRefusal(400, errors={"summary": "You must specify a summary of the issue."})
        for field in (PLANNED_START, PLANNED_END):
            if field not in fields:
                raise JiraRefusal(400, errors={field: "Planned start and end are required."})
            _time(fields[field], field)
        kind = fields.get(CHANGE_TYPE, {"value": "Normal"})
        if not isinstance(kind, dict) or kind.get("value") not in CHANGE_TYPES:
            raise JiraRefusal(
                400,
                errors={
                    CHANGE_TYPE: f"Specify a valid value for Change type "
                    f"({', '.join(CHANGE_TYPES)})"
                },
            )
        if self.refuse_next:
            message, self.refuse_next = self.refuse_next, ""
            raise DeskRefusal(403, message)
        self.counter += 1
        key = f"CHG-{self.counter}"
        emergency = kind["value"] == "Emergency"
        issue = {
            "id": str(10000 + self.counter),
            "key": key,
            "status": "Awaiting implementation" if emergency else "Awaiting CAB approval",
            "change_type": kind["value"],
            "summary": summary,
            "description": fields.get("description", ""),
            PLANNED_START: fields[PLANNED_START],
            PLANNED_END: fields[PLANNED_END],
            "approval": "approved" if emergency else "pending",
            "comments": [],
            "created": datetime.now(UTC),
        }
        self.issues[key] = issue
        return issue

    def transition(self, key: str, body: dict) -> None:
        issue = self.issue(key)
        wanted = (body.get("transition") or {}).get("id") if isinstance(body, dict) else None
        offered = {t[0]: t for t in WORKFLOW.get(issue["status"], [])}
        if wanted not in offered:
            raise JiraRefusal(400, f"Transition id '{wanted}' is not valid for this issue.")
        for comment in (body.get("update") or {}).get("comment") or []:
            added = comment.get("add") if isinstance(comment, dict) else None
            if not isinstance(added, dict) or not isinstance(added.get("body"), str):
                raise JiraRefusal(400, errors={"comment": "a comment is {add: {body}}"})
            issue["comments"].append({"body": added["body"], "public": False})
        issue["status"] = offered[wanted][2]


def _customer_request(issue: dict) -> dict:
    return {
        "_expands": [
            "participant",
            "status",
            "sla",
            "requestType",
            "serviceDesk",
            "attachment",
            "action",
            "comment",
        ],
        "issueId": issue["id"],
        "issueKey": issue["key"],
        "requestTypeId": REQUEST_TYPE_ID,
        "serviceDeskId": SERVICE_DESK_ID,
        "createdDate": _date(issue["created"]),
        "reporter": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Slipway"},
        "requestFieldValues": [
            {"fieldId": "summary", "label": "Summary", "value": issue["summary"]},
            {"fieldId": "description", "label": "Description", "value": issue["description"]},
        ],
        "currentStatus": {
            "status": issue["status"],
            "statusCategory": CATEGORY.get(issue["status"], "new").upper(),
            "statusDate": _date(datetime.now(UTC)),
        },
        "_links": {
            "web": f"/servicedesk/customer/portal/{SERVICE_DESK_ID}/{issue['key']}",
            "self": f"/rest/servicedeskapi/request/{issue['id']}",
        },
    }


def _approvals(issue: dict) -> dict:
    values = []
    if issue["change_type"] != "Emergency" or issue["approval"] != "approved":
        values.append(
            {
                "id": "1",
                "name": "Change advisory board",
                "finalDecision": issue["approval"],
                "canAnswerApproval": False,
                "approvers": [
                    {
                        "approver": {"accountId": "cab", "displayName": "CAB"},
                        "approverDecision": issue["approval"],
                    }
                ],
                "createdDate": _date(issue["created"]),
            }
        )
    return {
        "size": len(values),
        "start": 0,
        "limit": 50,
        "isLastPage": True,
        "values": values,
        "_links": {},
    }


def _issue(issue: dict, fields: list[str]) -> dict:
    have = {
        "status": {
            "name": issue["status"],
            "id": STATUS_IDS[issue["status"]],
            "statusCategory": {"key": CATEGORY.get(issue["status"], "new")},
        },
        "summary": issue["summary"],
        PLANNED_START: issue[PLANNED_START],
        PLANNED_END: issue[PLANNED_END],
        CHANGE_TYPE: {"value": issue["change_type"]},
    }
    shown = {f: have.get(f) for f in fields} if fields else have
    return {
        "expand": "renderedFields,names,schema,operations",
        "id": issue["id"],
        "self": f"/rest/api/2/issue/{issue['id']}",
        "key": issue["key"],
        "fields": shown,
    }


def handler_for(desk: Desk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            return

        def _answer(self, status: int, body: dict | None) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not raw:
                return {}
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise JiraRefusal(400, "Unexpected character: not JSON") from exc
            if not isinstance(parsed, dict):
                raise JiraRefusal(400, "Can not deserialize: not an object")
            return parsed

        def _auth(self) -> None:
            expected = base64.b64encode(f"{desk.email}:{desk.token}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                raise JiraRefusal(401, "Client must be authenticated to access this resource.")

        def _handle(self, method: str) -> None:
            try:
                body = self._body()
                path, _, query = self.path.partition("?")
                with desk.lock:
                    desk.requests.append(
                        {"method": method, "path": path, "query": query, "body": body}
                    )
                    self._answer(*self._route(method, path, query, body))
            except JiraRefusal as refusal:
                self._answer(refusal.status, refusal.body)

        def _route(self, method: str, path: str, query: str, body: dict):
            if path.startswith("/rest/"):
                self._auth()
                if self.headers.get("Accept") != "application/json":
                    raise JiraRefusal(406, "Accept: application/json")
                if method == "POST" and self.headers.get("Content-Type") != "application/json":
                    raise JiraRefusal(415, "Content-Type: application/json")
            if path == "/rest/servicedeskapi/request" and method == "POST":
                return 201, _customer_request(desk.create(body))
            found = re.fullmatch(
                r"/rest/servicedeskapi/request/([A-Z]+-\d+)/(approval|comment)", path
            )
            if found and found.group(2) == "approval" and method == "GET":
                return 200, _approvals(desk.issue(found.group(1)))
            if found and found.group(2) == "comment" and method == "POST":
                issue = desk.issue(found.group(1))
                if not isinstance(body.get("body"), str) or not isinstance(
                    body.get("public"), bool
                ):
                    raise DeskRefusal(400, "A comment needs a body and public (true or false)")
                issue["comments"].append({"body": body["body"], "public": body["public"]})
                return 201, {
                    "id": str(len(issue["comments"])),
                    "body": body["body"],
                    "public": body["public"],
                }
            found = re.fullmatch(r"/rest/api/2/issue/([A-Z]+-\d+)(/transitions)?", path)
            if found and not found.group(2) and method == "GET":
                fields = next(
                    (
                        v
                        for k, _, v in (p.partition("=") for p in query.split("&"))
                        if k == "fields"
                    ),
                    "",
                )
                names = [f for f in fields.replace("%2C", ",").split(",") if f]
                return 200, _issue(desk.issue(found.group(1)), names)
            if found and found.group(2) and method == "GET":
                issue = desk.issue(found.group(1))
                return 200, {
                    "expand": "transitions",
                    "transitions": [
                        {
                            "id": tid,
                            "name": name,
                            "hasScreen": False,
                            "isGlobal": False,
                            "isInitial": False,
                            "isConditional": False,
                            "to": {
                                "name": to,
                                "id": STATUS_IDS[to],
                                "statusCategory": {"key": CATEGORY.get(to, "new")},
                            },
                        }
                        for tid, name, to in WORKFLOW.get(issue["status"], [])
                    ],
                }
            if found and found.group(2) and method == "POST":
                desk.transition(found.group(1), body)
                return 204, None
            control = re.fullmatch(
                r"/_receiver/requests/([A-Z]+-\d+)/(approve|decline|window)", path
            )
            if control and method == "POST":
                issue = desk.issue(control.group(1))
                if control.group(2) == "window":
                    issue[PLANNED_START], issue[PLANNED_END] = body["start"], body["end"]
                elif issue["status"] == "Awaiting CAB approval":
                    approved = control.group(2) == "approve"
                    issue["approval"] = "approved" if approved else "declined"
                    issue["status"] = "Awaiting implementation" if approved else "Declined"
                return 200, {k: v for k, v in issue.items() if k != "created"}
            if path == "/_receiver/refuse" and method == "POST":
                desk.refuse_next = body.get("message", "refused")
                return 200, {"refusing": desk.refuse_next}
            if path == "/_receiver/issues" and method == "GET":
                return 200, {
                    "issues": [
                        {k: v for k, v in i.items() if k != "created"} for i in desk.issues.values()
                    ]
                }
            if path == "/_receiver/requests" and method == "GET":
                return 200, {"requests": desk.requests}
            raise JiraRefusal(404, f"No resource at {path}")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


def serve(
    *, port: int = 0, email: str = "slipway@example.com", token: str = ""
) -> tuple[ThreadingHTTPServer, Desk]:
    """Start the desk on 127.0.0.1 in a thread; returns the server and its state."""
    desk = Desk(email=email, token=token)
    return serve_in_thread(handler_for(desk), port), desk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--email", default="slipway@example.com")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    server, _ = serve(port=args.port, email=args.email, token=args.token)
    print(
        f"Jira Service Management receiver on http://127.0.0.1:{server.server_address[1]}",
        flush=True,
    )
    threading.Event().wait()


if __name__ == "__main__":
    main()
