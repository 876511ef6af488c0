"""The HTTP face of the emulated Jenkins: the REST API python-jenkins speaks, plus a
control API under /_emulator/ for tests and demos (reset, jobs, faults, state)."""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import sys
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.jenkins_emulator.emulator import Emulator, Fault
from devtools.jenkins_emulator.shapes import Shapes
from devtools.jenkins_emulator.state import Build, JobConfig

JENKINS_VERSION = "2.516.3"
CRUMB_FIELD = "Jenkins-Crumb"
SESSION_COOKIE = "JSESSIONID.slipway"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Jetty(12.0.22)"
    emulator: Emulator  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; tests read state through /_emulator/state

    # -- plumbing ---------------------------------------------------------------------

    def send(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str = "text/html;charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        time.sleep(getattr(self, "response_delay", 0.0))
        self.send_response(status)
        self.send_header("X-Jenkins", JENKINS_VERSION)
        self.send_header("X-Hudson", "1.395")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(
        self, data: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        self.send(status, json.dumps(data), "application/json;charset=utf-8", headers)

    @property
    def shapes(self) -> Shapes:
        return Shapes(self.emulator.state, self.base_url(), self.emulator.faults)

    def base_url(self) -> str:
        return f"http://{self.headers.get('Host', '127.0.0.1')}/"

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def session_id(self) -> str | None:
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        morsel = cookie.get(SESSION_COOKIE)
        return morsel.value if morsel and morsel.value in self.emulator.sessions else None

    def authenticate(self) -> tuple[str | None, str]:
        """(user, how): how is 'token', 'password', 'anonymous' or 'bad'."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return (None, "anonymous")
        try:
            name, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return (None, "bad")
        user = self.emulator.users.get(name)
        if user and user.get("api_token") and hmac.compare_digest(user["api_token"], secret):
            return (name, "token")
        if user and user.get("password") and hmac.compare_digest(user["password"], secret):
            return (name, "password")
        return (name, "bad")

    # -- dispatch ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        if path.startswith("/_emulator/"):
            return self.control(method, path, query)
        fault = self.emulator.take_fault(method, path)
        self.response_delay = fault.delay_response if fault else 0.0
        if fault:
            time.sleep(fault.delay)
            if fault.status or fault.body is not None:
                self.body()
                status = fault.status or 200
                body = fault.body if fault.body is not None else f"Emulated fault {status}\n"
                content_type = "application/json" if fault.body is not None else "text/plain"
                return self.send(status, body, content_type, fault.headers)
        user, how = self.authenticate()
        if how == "bad":
            return self.send(
                401,
                "Invalid password/token for user: {user}\n",
                "text/plain",
                {"WWW-Authenticate": 'Basic realm="Jenkins"'},
            )
        if how == "anonymous" and self.emulator.users:
            return self.send(403, "Authentication required\n", "text/plain")
        user = user or "anonymous"
        if method == "POST" and how == "password" and path != "/crumbIssuer/api/json":
            session = self.session_id()
            crumb = self.headers.get(CRUMB_FIELD, "")
            if not session or not hmac.compare_digest(
                crumb, self.emulator.crumb_for(session, user)
            ):
                return self.send(403, "No valid crumb was included in the request\n", "text/plain")
        self.emulator.state.tick()
        try:
            self.route(method, path.rstrip("/") or "/", query, user)
        except KeyError:
            self.send(404, "Not Found\n", "text/plain")

    def route(self, method: str, path: str, query: dict[str, str], user: str) -> None:
        state = self.emulator.state
        if path == "/":
            return self.send(200, "<html><body>Dashboard [Jenkins]</body></html>")
        if path == "/api/json":
            return self.send_json(
                {
                    "_class": "hudson.model.Hudson",
                    "mode": "NORMAL",
                    "nodeDescription": "the Jenkins controller (Slipway emulator)",
                    "numExecutors": state.executors,
                    "useCrumbs": True,
                    "useSecurity": True,
                    "jobs": [self.shapes.job_ref(name) for name in self.children("")],
                }
            )
        if path == "/me/api/json":
            return self.send_json(
                {
                    "_class": "hudson.model.User",
                    "id": user,
                    "fullName": user,
                    "absoluteUrl": f"{self.base_url()}user/{user}",
                }
            )
        if path == "/crumbIssuer/api/json":
            return self.crumb(user)
        if path == "/queue/api/json":
            with state.lock:
                items = [
                    self.shapes.queue_json(i) for i in state.queue.values() if i.left_at is None
                ]
            return self.send_json({"_class": "hudson.model.Queue", "items": items})
        if path == "/queue/cancelItem" and method == "POST":
            state.cancel(int(query.get("id", "0") or 0))
            return self.send(204)
        match = re.fullmatch(r"/queue/item/(\d+)(/api/json)?", path)
        if match:
            with state.lock:
                item = state.queue[int(match.group(1))]
                data = self.shapes.queue_json(item)
            if match.group(2):
                return self.send_json(data)
            return self.send(200, f"<html><body>Queue item {item.id}</body></html>")
        if path.startswith("/job/"):
            return self.job_route(method, path, query, user)
        raise KeyError(path)

    def crumb(self, user: str) -> None:
        session = self.session_id()
        headers = {}
        if session is None:
            session = secrets.token_hex(16)
            self.emulator.sessions[session] = user
            headers["Set-Cookie"] = f"{SESSION_COOKIE}={session}; Path=/; HttpOnly"
        self.send_json(
            {
                "_class": "hudson.security.csrf.DefaultCrumbIssuer",
                "crumb": self.emulator.crumb_for(session, user),
                "crumbRequestField": CRUMB_FIELD,
            },
            headers=headers,
        )

    # -- jobs and builds --------------------------------------------------------------

    def children(self, folder: str) -> list[str]:
        """Direct children names (jobs or folders) of a folder path ('' is the root)."""
        prefix = f"{folder}/" if folder else ""
        names = []
        for job in self.emulator.state.jobs:
            if job.startswith(prefix):
                child = prefix + job[len(prefix) :].split("/")[0]
                if child not in names:
                    names.append(child)
        return names

    def job_route(self, method: str, path: str, query: dict[str, str], user: str) -> None:
        parts = path.strip("/").split("/")
        names: list[str] = []
        while len(parts) >= 2 and parts[0] == "job":
            names.append(parts[1])
            parts = parts[2:]
        name = "/".join(names)
        state = self.emulator.state
        rest = "/".join(parts)
        if name not in state.jobs:
            if rest in ("", "api/json") and self.children(name) and method == "GET":
                return self.send_json(
                    {
                        "_class": "com.cloudbees.hudson.plugins.folder.Folder",
                        "name": names[-1],
                        "fullName": name,
                        "url": self.shapes.job_url(name),
                        "jobs": [self.shapes.job_ref(child) for child in self.children(name)],
                    }
                )
            raise KeyError(name)
        if rest in ("buildWithParameters", "build") and method == "POST":
            return self.trigger(name, rest, query, user)
        if rest == "api/json":
            return self.send_json(self.shapes.job_json(name))
        if rest == "":
            return self.send(200, f"<html><body>{name} [Jenkins]</body></html>")
        match = re.fullmatch(r"(\d+|lastBuild|lastCompletedBuild)(?:/(.*))?", rest)
        if not match:
            raise KeyError(rest)
        build = self.find_build(name, match.group(1))
        action = match.group(2) or ""
        now = time.time()
        if action == "api/json":
            return self.send_json(self.shapes.build_json(build, now))
        if action == "":
            return self.send(200, f"<html><body>{name} #{build.number}</body></html>")
        if action == "consoleText":
            return self.send(200, build.console(now), "text/plain;charset=utf-8")
        if action == "logText/progressiveText":
            text = build.console(now)
            start = min(int(query.get("start", "0") or 0), len(text))
            end = len(text)
            limit = state.jobs[name].max_chunk_bytes
            if limit:
                end = min(end, start + limit)
            headers = {"X-Text-Size": str(end)}
            if build.building(now) or end < len(text):
                headers["X-More-Data"] = "true"
            return self.send(200, text[start:end], "text/plain;charset=utf-8", headers)
        if action == "stop" and method == "POST":
            state.stop(name, build.number, user)
            return self.send(
                302, headers={"Location": f"{self.shapes.job_url(name)}{build.number}/"}
            )
        if action.startswith("artifact/"):
            data = build.artifacts(now)[action[len("artifact/") :]]
            return self.send(200, data, "application/octet-stream")
        raise KeyError(action)

    def find_build(self, name: str, ref: str) -> Build:
        builds = self.emulator.state.builds[name]
        now = time.time()
        if ref == "lastBuild":
            return builds[max(builds)]
        if ref == "lastCompletedBuild":
            return builds[max(n for n, b in builds.items() if not b.building(now))]
        return builds[int(ref)]

    def trigger(self, name: str, action: str, query: dict[str, str], user: str) -> None:
        job = self.emulator.state.jobs[name]
        form = dict(parse_qsl(self.body().decode(), keep_blank_values=True))
        given = {k: v for k, v in {**query, **form}.items() if k not in ("token", "delay")}
        if job.disabled:
            return self.send(409, f"{name} is not buildable\n", "text/plain")
        if action == "buildWithParameters" and not job.parameters:
            return self.send(400, f"{name} is not parameterized\n", "text/plain")
        if action == "build" and given:
            return self.send(
                400,
                f"{name} does not take parameters here; use buildWithParameters\n",
                "text/plain",
            )
        parameters = {p["name"]: given.get(p["name"], p.get("default", "")) for p in job.parameters}
        item, created = self.emulator.state.schedule(name, parameters, user)
        location = f"{self.base_url()}queue/item/{item.id}/"
        self.send(201 if created else 303, headers={"Location": location})

    # -- control API ------------------------------------------------------------------

    def control(self, method: str, path: str, query: dict[str, str]) -> None:
        emulator = self.emulator
        try:
            payload = json.loads(self.body() or b"{}")
            if path == "/_emulator/reset" and method == "POST":
                jobs = (
                    [JobConfig.from_dict(j) for j in payload["jobs"]] if "jobs" in payload else None
                )
                emulator.state.reset(jobs)
                emulator.faults.clear()
                emulator.notifier.endpoints = list(payload.get("notifications", []))
                return self.send_json({"ok": True})
            if path == "/_emulator/jobs" and method in ("POST", "PUT"):
                emulator.state.set_job(JobConfig.from_dict(payload))
                return self.send_json({"ok": True})
            if path == "/_emulator/notifications" and method in ("POST", "PUT"):
                endpoints = payload.get("endpoints", [])
                if not isinstance(endpoints, list) or not all(
                    isinstance(e, str) and e.startswith(("http://", "https://")) for e in endpoints
                ):
                    raise ValueError("endpoints: a list of http(s) URLs")
                emulator.notifier.endpoints = endpoints
                return self.send_json({"ok": True})
            if path == "/_emulator/faults" and method == "POST":
                with emulator.lock:
                    emulator.faults.append(Fault(**payload))
                return self.send_json({"ok": True})
            if path == "/_emulator/faults" and method == "DELETE":
                with emulator.lock:
                    emulator.faults.clear()
                return self.send_json({"ok": True})
            if path == "/_emulator/state" and method == "GET":
                return self.send_json(self.shapes.snapshot())
        except (ValueError, TypeError, KeyError) as exc:
            return self.send_json({"error": str(exc)}, status=400)
        self.send_json({"error": f"no control endpoint {method} {path}"}, status=404)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # A real server's backlog, not socketserver's 5: a burst of connections (50 releases
    # polled at once) would wait out TCP's one-second SYN retries instead of queueing.
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (timeout) is part of the game, not a server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(
    config: dict[str, Any], host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    emulator = Emulator(config)
    handler = type("BoundHandler", (Handler,), {"emulator": emulator})
    server = QuietServer((host, port), handler)
    server.emulator = emulator  # type: ignore[attr-defined]
    bound_host, bound_port = server.server_address[:2]
    emulator.notifier.base_url = f"http://{bound_host}:{bound_port}/"
    return server
