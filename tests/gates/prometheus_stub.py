"""A local HTTP server that speaks Prometheus's `/api/v1/query` format, answering with
responses recorded from Prometheus's documentation (HTTP API → instant queries)."""

from __future__ import annotations

import copy
import json
from urllib.parse import parse_qs, urlsplit

from tests.support.http import QuietHandler

# https://prometheus.io/docs/prometheus/latest/querying/api/#instant-queries
DOCS_VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [
            {
                "metric": {"__name__": "up", "job": "prometheus", "instance": "localhost:9090"},
                "value": [1435781451.781, "1"],
            },
            {
                "metric": {"__name__": "up", "job": "node", "instance": "localhost:9100"},
                "value": [1435781451.781, "0"],
            },
        ],
    },
}
# https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview
DOCS_ERROR = {
    "status": "error",
    "errorType": "bad_data",
    "error": 'invalid parameter "query": 1:6: parse error: unexpected end of input',
}
EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


def vector(value: str) -> dict:
    """The documentation's vector answer with its first sample set to `value`."""
    answer = copy.deepcopy(DOCS_VECTOR)
    answer["data"]["result"][0]["value"][1] = value
    return answer


class PrometheusStub:
    def __init__(self) -> None:
        self.answer: dict = DOCS_VECTOR
        self.queries: list[str] = []
        self.url = ""  # set once it serves (tests.support.http.serving)

    def handler(self) -> type[QuietHandler]:
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/api/v1/query":
                    self.send_error(404)
                    return
                stub.queries.append(parse_qs(parts.query).get("query", [""])[0])
                status = 400 if stub.answer.get("status") == "error" else 200
                self.answer(status, json.dumps(stub.answer).encode())

        return Handler
