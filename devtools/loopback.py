"""A loopback HTTP server in a thread, for the emulators and receivers that stand in for
systems Slipway calls (Drone, ServiceNow, Jira Service Management)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    # A real server's backlog, not socketserver's 5: each call is a connection of its own
    # (HTTP/1.0), and a burst of them (50 builds polled at once) waited out TCP's
    # one-second SYN retries until the client's read timed out.
    request_queue_size = 128


def serve_in_thread(handler: type[BaseHTTPRequestHandler], port: int = 0) -> LoopbackServer:
    """Serve `handler` on 127.0.0.1:`port` (0: a free one) from a daemon thread."""
    server = LoopbackServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
