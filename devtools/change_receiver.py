"""A local change-management receiver for tests and `make run`: a real HTTP server that
answers like ServiceNow's Table API for `change_request` and like a generic signed
webhook receiver, and checks the shape of every request it gets.

ServiceNow side (Basic auth):
  POST  /api/now/table/change_request            create (type, short_description, …)
  GET   /api/now/table/change_request/<sys_id>   read
  PATCH /api/now/table/change_request/<sys_id>   work_notes, state, close_code, close_notes
Errors answer like ServiceNow: `{"error": {"message", "detail"}, "status": "failure"}`.

Webhook side: POST /webhook with `X-Slipway-Signature: sha256=<hmac of the body>`.

Control (what a change manager would do in the real system):
  POST /_receiver/changes/<number>/approve | reject       set `approval`
  POST /_receiver/auto-approve {"on": true|false}         a board that approves each
                                                          normal change as it is made
  POST /_receiver/changes/<number>/window  {"start", "end"}  (ServiceNow time format)
  POST /_receiver/refuse {"message": "…"}                 refuse the next create
  GET  /_receiver/changes, GET /_receiver/requests        what it holds and received

    python -m devtools.change_receiver --port 8091 --user slipway --password pw --secret s \
        [--auto-approve] [--state .local/changes.json]

`--state` keeps the changes in a file across restarts (`make run` does), so a change a
deployment opened before a restart can still be started and closed after it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from devtools.loopback import serve_in_thread

TABLE = "/api/now/table/change_request"
SN_TIME = "%Y-%m-%d %H:%M:%S"
TYPES = ("normal", "emergency", "standard")
STATES = ("-5", "-4", "-3", "-2", "-1", "0", "3", "4")
CLOSE_CODES = ("successful", "successful_issues", "unsuccessful")
WRITABLE = {"work_notes", "state", "close_code", "close_notes", "start_date", "end_date"}
REQUIRED_ON_CREATE = ("type", "short_description", "description", "start_date", "end_date")


class Refusal(Exception):
    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


class Receiver:
    """What the receiver holds: changes by sys_id, every request received, one refusal."""

    def __init__(
        self,
        *,
        user: str,
        password: str,
        secret: str,
        auto_approve: bool = False,
        state_file: Path | None = None,
    ) -> None:
        self.user, self.password, self.secret = user, password, secret
        self.changes: dict[str, dict] = {}
        self.requests: list[dict] = []
        self.refuse_next = ""
        self.lock = threading.Lock()
        self.counter = 30000
        self.auto_approve = auto_approve
        self.state_file = state_file
        if state_file is not None and state_file.exists():
            try:
                kept = json.loads(state_file.read_text())
                self.changes, self.counter = dict(kept["changes"]), int(kept["counter"])
            except (ValueError, KeyError, TypeError) as exc:
                # A desk that cannot read its file starts empty rather than not at all
                # (make run stops every process when one dies).
                print(f"change receiver: {state_file} unreadable ({exc!r}); starting empty")

    def save(self) -> None:
        """Write the changes to the state file, if there is one (called under the lock)."""
        if self.state_file is None:
            return
        written = self.state_file.with_suffix(".tmp")
        written.write_text(json.dumps({"changes": self.changes, "counter": self.counter}))
        written.replace(self.state_file)  # whole or not at all

    def by_number(self, number: str) -> dict:
        for change in self.changes.values():
            if change["number"] == number:
                return change
        raise Refusal(404, "No Record found", f"no change_request {number}")

    def create(self, body: dict) -> dict:
        missing = [f for f in REQUIRED_ON_CREATE if not body.get(f)]
        if missing:
            raise Refusal(400, "Missing mandatory fields", ", ".join(missing))
        if body["type"] not in TYPES:
            raise Refusal(400, "Invalid type", f"type must be one of {', '.join(TYPES)}")
        for field in ("start_date", "end_date"):
            _time(body[field])
        if self.refuse_next:
            message, self.refuse_next = self.refuse_next, ""
            raise Refusal(403, "Operation Failed", message)
        self.counter += 1
        approved = body["type"] == "emergency" or self.auto_approve
        change = {
            "sys_id": uuid.uuid4().hex,
            "number": f"CHG{self.counter:07d}",
            "state": "-2" if self.auto_approve and body["type"] != "emergency" else "-5",
            # Emergency changes are approved by the CAB after the fact; normal ones wait,
            # unless the board approves each as it is made (--auto-approve).
            "approval": "approved" if approved else "requested",
            "work_notes_history": [],
            **{k: v for k, v in body.items() if k != "work_notes"},
        }
        self.changes[change["sys_id"]] = change
        return change

    def update(self, sys_id: str, body: dict) -> dict:
        change = self.changes.get(sys_id)
        if change is None:
            raise Refusal(404, "No Record found", "Record doesn't exist or ACL restricts")
        unknown = set(body) - WRITABLE
        if unknown:
            raise Refusal(400, "Invalid field", ", ".join(sorted(unknown)))
        state = str(body.get("state", change["state"]))
        if state not in STATES:
            raise Refusal(400, "Invalid state", state)
        if state == "3" and body.get("close_code") not in CLOSE_CODES:
            raise Refusal(400, "Close code required", f"one of {', '.join(CLOSE_CODES)}")
        if state in ("-1", "3") and change["approval"] != "approved":
            raise Refusal(403, "Operation Failed", "the change is not approved")
        if body.get("work_notes"):
            change["work_notes_history"].append(body["work_notes"])
        change.update({k: v for k, v in body.items() if k != "work_notes"})
        change["state"] = state
        return change

    def webhook(self, body: dict) -> dict:
        event = body.get("event")
        if event == "create":
            created = self.create(
                {
                    "type": "emergency" if body.get("emergency") else "normal",
                    "short_description": body.get("short_description"),
                    "description": body.get("description"),
                    "start_date": _sn(body.get("planned_start")),
                    "end_date": _sn(body.get("planned_end")),
                }
            )
            return _as_webhook(created)
        change = self.changes.get(str(body.get("id")))
        if change is None:
            raise Refusal(404, "unknown change", str(body.get("id")))
        if event == "read":
            return _as_webhook(change)
        moves = {"implement": {"state": "-1"}, "note": {}, "cancel": {"state": "4"},
                 "close": {"state": "3", "close_code": "successful" if body.get("successful")
                           else "unsuccessful"}}  # fmt: skip
        if event not in moves:
            raise Refusal(400, "unknown event", str(event))
        return _as_webhook(
            self.update(change["sys_id"], {**moves[event], "work_notes": body.get("note", "")})
        )


def _time(value: str) -> datetime:
    try:
        return datetime.strptime(value, SN_TIME).replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise Refusal(400, "Invalid date", f"{value!r} is not {SN_TIME}") from exc


def _sn(iso: str | None) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime(SN_TIME) if iso else ""


def _as_webhook(change: dict) -> dict:
    state = {"-5": "new", "-4": "assess", "-3": "authorize", "-2": "scheduled",
             "-1": "implement", "0": "review", "3": "closed", "4": "canceled"}  # fmt: skip
    return {
        "id": change["sys_id"],
        "number": change["number"],
        "state": state[change["state"]],
        "approved": change["approval"] == "approved",
        "approval": change["approval"],
        "planned_start": _time(change["start_date"]).isoformat(),
        "planned_end": _time(change["end_date"]).isoformat(),
    }


def _public(change: dict) -> dict:
    return {k: v for k, v in change.items() if k != "work_notes_history"}


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            return

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> tuple[bytes, dict]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not raw:
                return raw, {}
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise Refusal(400, "Exception while reading request", "not JSON") from exc
            if not isinstance(parsed, dict):
                raise Refusal(400, "Exception while reading request", "not an object")
            return raw, parsed

        def _basic(self) -> None:
            expected = base64.b64encode(f"{receiver.user}:{receiver.password}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                raise Refusal(401, "User Not Authenticated", "Required to provide Auth information")

        def _handle(self, method: str) -> None:
            try:
                raw, body = self._body()
                path = self.path.split("?")[0]
                with receiver.lock:
                    receiver.requests.append(
                        {"method": method, "path": path, "query": self.path.partition("?")[2],
                         "body": body, "content_type": self.headers.get("Content-Type", "")}
                    )  # fmt: skip
                    answer = self._route(method, path, raw, body)
                    if method != "GET":
                        receiver.save()
                    self._answer(*answer)
            except Refusal as refusal:
                self._answer(
                    refusal.status,
                    {"error": {"message": refusal.message, "detail": refusal.detail},
                     "status": "failure"},
                )  # fmt: skip

        def _route(self, method: str, path: str, raw: bytes, body: dict) -> tuple[int, dict]:
            if path.startswith(TABLE):
                self._basic()
                if self.headers.get("Accept") != "application/json":
                    raise Refusal(406, "Not Acceptable", "Accept: application/json")
                sys_id = path[len(TABLE) + 1 :]
                if method == "POST" and not sys_id:
                    return 201, {"result": _public(receiver.create(body))}
                if method == "GET" and sys_id in receiver.changes:
                    return 200, {"result": _public(receiver.changes[sys_id])}
                if method == "PATCH" and sys_id:
                    return 200, {"result": _public(receiver.update(sys_id, body))}
                raise Refusal(404, "No Record found", "Record doesn't exist or ACL restricts")
            if path == "/webhook" and method == "POST":
                expected = (
                    "sha256=" + hmac.new(receiver.secret.encode(), raw, hashlib.sha256).hexdigest()
                )
                if not hmac.compare_digest(self.headers.get("X-Slipway-Signature", ""), expected):
                    raise Refusal(401, "bad signature")
                return 200, receiver.webhook(body)
            control = re.fullmatch(r"/_receiver/changes/(CHG\d+)/(approve|reject|window)", path)
            if control and method == "POST":
                change = receiver.by_number(control.group(1))
                if control.group(2) == "window":
                    change["start_date"], change["end_date"] = body["start"], body["end"]
                else:
                    change["approval"] = "approved" if control.group(2) == "approve" else "rejected"
                    change["state"] = "-2" if control.group(2) == "approve" else "4"
                return 200, _public(change)
            if path == "/_receiver/auto-approve" and method == "POST":
                receiver.auto_approve = bool(body.get("on"))
                return 200, {"auto_approve": receiver.auto_approve}
            if path == "/_receiver/refuse" and method == "POST":
                receiver.refuse_next = body.get("message", "refused")
                return 200, {"refusing": receiver.refuse_next}
            if path == "/_receiver/changes" and method == "GET":
                return 200, {"changes": list(receiver.changes.values())}
            if path == "/_receiver/requests" and method == "GET":
                return 200, {"requests": receiver.requests}
            raise Refusal(404, "Not found", path)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

    return Handler


def serve(
    *,
    port: int = 0,
    user: str = "slipway",
    password: str = "",
    secret: str = "",
    auto_approve: bool = False,
    state_file: Path | None = None,
) -> tuple[ThreadingHTTPServer, Receiver]:
    """Start the receiver on 127.0.0.1 in a thread; returns the server and its state."""
    receiver = Receiver(
        user=user,
        password=password,
        secret=secret,
        auto_approve=auto_approve,
        state_file=state_file,
    )
    return serve_in_thread(handler_for(receiver), port), receiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--user", default="slipway")
    parser.add_argument("--password", required=True)
    parser.add_argument("--secret", default="")
    parser.add_argument(
        "--auto-approve", action="store_true", help="approve each normal change as it is made"
    )
    parser.add_argument("--state", type=Path, help="keep the changes in this file")
    args = parser.parse_args()
    server, _ = serve(
        port=args.port,
        user=args.user,
        password=args.password,
        secret=args.secret,
        auto_approve=args.auto_approve,
        state_file=args.state,
    )
    print(f"change receiver on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
