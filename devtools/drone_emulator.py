"""A Drone emulator: a real HTTP server speaking the part of Drone's API (drone/drone v2.0.4,
`handler/api/`) Slipway uses, with Drone's JSON shapes (`core/build.go`, `core/stage.go`,
`core/step.go`, `core/logs.go`), so a Drone client works unchanged against it.

    POST   /api/repos/{owner}/{name}/builds?branch=&commit=&KEY=VALUE   start (params kept)
    GET    /api/repos/{owner}/{name}/builds?page=&per_page=             newest first
    GET    /api/repos/{owner}/{name}/builds/{number}                    with stages and steps
    GET    /api/repos/{owner}/{name}/builds/{number}/logs/{stage}/{step}  [{pos, out, time}]
    DELETE /api/repos/{owner}/{name}/builds/{number}                    cancel (killed)
    GET    /api/stream/{owner}/{name}/{number}/{stage}/{step}           live lines (SSE)
    GET    /api/user                                                    who the token is

A build runs its repository's steps one after another, each for its seconds; a step's log
is stored when it ends (before that, 404, as Drone's log store). The last step prints
`SLIPWAY_IMAGE=<IMAGE_REPOSITORY>@sha256:…` (a digest derived from the repository and ref).
A ref containing `fail` fails the `test` step (exit code 1).

Control: POST /_emulator/repos/{owner}/{name} {"steps": [{"name", "seconds", "lines",
"status"}], "digest": "sha256:…"} · POST /_emulator/faults {"unavailable": n} (the next n
API calls answer 503) · GET /_emulator/builds (each with `emulator`: created and ends, in
fractional epoch seconds).

    python -m devtools.drone_emulator --port 8092 --token drone-dev-token
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from devtools.loopback import serve_in_thread

DEFAULT_STEPS = [
    {"name": "clone", "seconds": 0.3,
     "lines": ["+ git fetch origin {ref}", "HEAD is now at {sha7}"]},
    {"name": "test", "seconds": 0.5, "lines": ["+ make test", "ok  all tests passed"]},
    {"name": "publish", "seconds": 0.5, "lines": ["+ docker build -t {image}:{sha7} .",
                                                   "+ docker push {image}:{sha7}",
                                                   "SLIPWAY_IMAGE={image}@{digest}"]},
]  # fmt: skip


@dataclass
class Build:
    number: int
    repo: str
    ref: str
    sha: str
    params: dict[str, str]
    steps: list[dict]
    created: float
    sender: str
    killed_at: float | None = None
    logs: dict[int, list[dict]] = field(default_factory=dict)

    def step_windows(self) -> list[tuple[float, float]]:
        start, windows = self.created, []
        for step in self.steps:
            windows.append((start, start + float(step.get("seconds", 0.5))))
            start += float(step.get("seconds", 0.5))
        return windows

    def step_status(self, index: int, now: float) -> str:
        begin, end = self.step_windows()[index]
        failed_before = any(
            self.steps[i].get("status", "success") != "success" and self.step_windows()[i][1] <= now
            for i in range(index)
        )
        if failed_before:
            return "skipped"
        if self.killed_at is not None and self.killed_at < end:
            return "killed" if self.killed_at >= begin else "skipped"
        if now < begin:
            return "pending"
        if now < end:
            return "running"
        return self.steps[index].get("status", "success")

    def status(self, now: float) -> str:
        statuses = [self.step_status(i, now) for i in range(len(self.steps))]
        if "killed" in statuses or (self.killed_at is not None and "success" not in statuses[-1:]):
            return "killed"
        if "failure" in statuses:
            return "failure"
        if "running" in statuses:
            return "running"
        if statuses and statuses[0] == "pending":
            return "pending"
        if all(s == "success" for s in statuses):
            return "success"
        return "running"


class Emulator:
    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, dict] = {}
        self.builds: dict[str, list[Build]] = {}
        self.unavailable = 0
        self.lock = threading.Lock()

    def config(self, repo: str) -> dict:
        return self.repos.get(repo, {"steps": DEFAULT_STEPS})

    def start(self, repo: str, query: dict[str, str], sender: str) -> Build:
        ref = query.get("branch") or "main"
        sha = query.get("commit") or hashlib.sha1(f"{repo}:{ref}".encode()).hexdigest()
        params = {k: v for k, v in query.items() if k not in ("branch", "commit", "access_token")}
        config = self.config(repo)
        image = params.get("IMAGE_REPOSITORY", f"registry.local/{repo}")
        digest = (
            config.get("digest") or "sha256:" + hashlib.sha256(f"{repo}@{ref}".encode()).hexdigest()
        )
        fill = {"ref": ref, "sha7": sha[:7], "image": image, "digest": digest}
        steps = []
        for step in config["steps"]:
            made = dict(step)
            made["lines"] = [line.format(**fill) for line in step.get("lines", [])]
            if made["name"] == "test" and "fail" in ref:
                made["status"] = "failure"
                made["lines"] = [*made["lines"][:1], "FAIL  TestCheckout (0.02s)", "exit status 1"]
            steps.append(made)
        builds = self.builds.setdefault(repo, [])
        build = Build(len(builds) + 1, repo, ref, sha, params, steps, time.time(), sender)
        builds.append(build)
        return build

    def as_json(self, build: Build, *, with_stages: bool) -> dict:
        now = time.time()
        status = build.status(now)
        windows = build.step_windows()
        finished = status not in ("pending", "running")
        end = build.killed_at if build.killed_at else windows[-1][1]
        body = {
            "id": build.number, "repo_id": 1, "trigger": build.sender, "number": build.number,
            "status": status, "event": "custom", "action": "", "link": f"https://git.example.com/{build.repo}/commit/{build.sha}",
            "timestamp": int(build.created), "message": f"build {build.ref}", "before": build.sha,
            "after": build.sha, "ref": f"refs/heads/{build.ref}", "source_repo": "",
            "source": build.ref, "target": build.ref, "author_login": build.sender,
            "author_name": build.sender, "author_email": f"{build.sender}@example.com",
            "author_avatar": "", "sender": build.sender, "params": build.params,
            "started": int(build.created), "finished": int(end) if finished else 0,
            "created": int(build.created), "updated": int(now), "version": 1,
        }  # fmt: skip
        if with_stages:
            steps = []
            for i, step in enumerate(build.steps):
                step_status = build.step_status(i, now)
                begin, stop = windows[i]
                steps.append({
                    "id": i + 1, "step_id": 1, "number": i + 1, "name": step["name"],
                    "status": step_status, "exit_code": 1 if step_status == "failure" else 0,
                    "started": int(begin) if step_status != "pending" else 0,
                    "stopped": int(stop) if step_status in ("success", "failure") else 0,
                    "version": 1, "image": "alpine:3",
                })  # fmt: skip
            body["stages"] = [{
                "id": 1, "repo_id": 1, "build_id": build.number, "number": 1, "name": "default",
                "kind": "pipeline", "type": "docker", "status": status, "errignore": False,
                "exit_code": 1 if status == "failure" else 0, "os": "linux", "arch": "amd64",
                "started": int(build.created), "stopped": int(end) if finished else 0,
                "created": int(build.created), "updated": int(now), "version": 1,
                "on_success": True, "on_failure": False, "steps": steps,
            }]  # fmt: skip
        return body

    def log(self, build: Build, step_number: int) -> list[dict] | None:
        index = step_number - 1
        if not 0 <= index < len(build.steps):
            return None
        if build.step_status(index, time.time()) in ("pending", "running", "skipped"):
            return None  # Drone stores a step's log when it ends
        begin = int(build.step_windows()[index][0])
        return [{"pos": pos, "out": line + "\n", "time": pos}
                for pos, line in enumerate(build.steps[index]["lines"])] or [
            {"pos": 0, "out": "", "time": begin}]  # fmt: skip

    def live(self, build: Build, index: int, now: float) -> tuple[list[str], bool]:
        """The lines a running step has printed so far, and whether it still runs (Drone's
        livelog: `GET /api/stream/…` replays them, then follows)."""
        lines = build.steps[index]["lines"]
        begin, end = build.step_windows()[index]
        running = build.step_status(index, now) == "running"
        if not running:
            return [], False
        share = (now - begin) / max(end - begin, 0.001)
        return lines[: min(len(lines), int(share * len(lines)) + 1)], True


API = re.compile(r"^/api/repos/([^/]+)/([^/]+)/builds(?:/(\d+))?(?:/logs/(\d+)/(\d+))?/?$")
STREAM = re.compile(r"^/api/stream/([^/]+)/([^/]+)/(\d+)/(\d+)/(\d+)$")


def handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            return

        def _send(self, status: int, body) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"message": message})  # Drone's render.ErrorCode shape

        def _stream(self, repo: str, number: int, step: int) -> None:
            """Drone's log stream (handler/api/events/logs.go): server-sent events, one
            `data: {pos, out, time}` per line, `event: error / data: eof` at the end."""
            with emulator.lock:
                builds = emulator.builds.get(repo, [])
                build = builds[number - 1] if 0 < number <= len(builds) else None
            if build is None or not 0 < step <= len(build.steps):
                return self._error(404, "sql: no rows in result set")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            sent = 0
            try:
                self.wfile.write(b": ping\n\n")
                while True:
                    lines, running = emulator.live(build, step - 1, time.time())
                    for pos in range(sent, len(lines)):
                        event = {"pos": pos, "out": lines[pos] + "\n", "time": pos}
                        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                    sent = max(sent, len(lines))
                    self.wfile.flush()
                    if not running:
                        break
                    time.sleep(0.05)
                self.wfile.write(b"event: error\ndata: eof\n\n")
            except (BrokenPipeError, ConnectionResetError):
                return  # the client read what it wanted and left

        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
            path = parts.path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            streamed = STREAM.match(parts.path)
            if streamed and method == "GET":
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token != emulator.token:
                    return self._error(401, "Unauthorized")
                owner, name, number, _stage, step = streamed.groups()
                return self._stream(f"{owner}/{name}", int(number), int(step))
            with emulator.lock:
                if path.startswith("/_emulator/"):
                    return self._control(method, path, raw)
                if emulator.unavailable > 0:
                    emulator.unavailable -= 1
                    return self._error(503, "service unavailable")
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token != emulator.token and query.get("access_token") != emulator.token:
                    return self._error(401, "Unauthorized")
                if path == "/api/user" and method == "GET":
                    return self._send(200, {"id": 1, "login": "slipway", "admin": False,
                                            "active": True, "machine": True})  # fmt: skip
                match = API.match(path)
                if match is None:
                    return self._error(404, "Not Found")
                owner, name, number, stage, step = match.groups()
                repo = f"{owner}/{name}"
                if number is None:
                    if method == "POST":
                        build = emulator.start(repo, query, "slipway")
                        return self._send(200, emulator.as_json(build, with_stages=False))
                    if method == "GET":
                        page = max(int(query.get("page", 1) or 1), 1)
                        per = int(query.get("per_page", 25) or 25)
                        per = per if 1 <= per <= 100 else 25
                        newest = list(reversed(emulator.builds.get(repo, [])))
                        chunk = newest[(page - 1) * per : page * per]
                        return self._send(
                            200, [emulator.as_json(b, with_stages=False) for b in chunk]
                        )
                    return self._error(405, "Method Not Allowed")
                builds = emulator.builds.get(repo, [])
                index = int(number) - 1
                if not 0 <= index < len(builds):
                    return self._error(404, "sql: no rows in result set")
                build = builds[index]
                if stage is not None:
                    if method != "GET" or int(stage) != 1:
                        return self._error(404, "sql: no rows in result set")
                    lines = emulator.log(build, int(step))
                    if lines is None:
                        return self._error(404, "sql: no rows in result set")
                    return self._send(200, lines)
                if method == "GET":
                    return self._send(200, emulator.as_json(build, with_stages=True))
                if method == "DELETE":
                    if build.status(time.time()) in ("pending", "running"):
                        build.killed_at = time.time()
                    return self._send(200, emulator.as_json(build, with_stages=True))
                return self._error(405, "Method Not Allowed")

        def _control(self, method: str, path: str, raw: bytes) -> None:
            body = json.loads(raw or b"{}")
            repo = re.fullmatch(r"/_emulator/repos/([^/]+/[^/]+)", path)
            if repo and method == "POST":
                config = {"steps": body.get("steps") or DEFAULT_STEPS}
                if body.get("digest"):
                    config["digest"] = body["digest"]
                emulator.repos[repo.group(1)] = config
                return self._send(200, emulator.repos[repo.group(1)])
            if path == "/_emulator/faults" and method == "POST":
                emulator.unavailable = int(body.get("unavailable", 0))
                return self._send(200, {"unavailable": emulator.unavailable})
            if path == "/_emulator/builds" and method == "GET":
                # Drone's JSON, and beside it when the build was made and when its last step
                # ends, to the microsecond (Drone's own times are whole seconds).
                return self._send(200, {repo: [
                    {**emulator.as_json(b, with_stages=True),
                     "emulator": {"created": b.created, "ends": b.step_windows()[-1][1]}}
                    for b in bs] for repo, bs in emulator.builds.items()})  # fmt: skip
            return self._error(404, "Not Found")

        def do_GET(self) -> None:
            self._route("GET")

        def do_POST(self) -> None:
            self._route("POST")

        def do_DELETE(self) -> None:
            self._route("DELETE")

    return Handler


def serve(*, port: int = 0, token: str = "drone-dev-token") -> tuple[ThreadingHTTPServer, Emulator]:
    emulator = Emulator(token)
    return serve_in_thread(handler_for(emulator), port), emulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Drone emulator")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--token", default="drone-dev-token")
    args = parser.parse_args()
    server, _ = serve(port=args.port, token=args.token)
    print(f"Drone emulator on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
