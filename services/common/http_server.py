"""One port per service for operators: ``/metrics`` (Prometheus) and ``/healthz`` (JSON), and
for the notifier ``POST /alerts`` (Alertmanager's webhook).

prometheus-client's own WSGI app serves the metrics; ``/healthz`` asks the service's health
(a function giving the HTTP status and the body) at request time; ``/alerts`` hands the posted
body to the service's function, which answers at once. The server runs in a daemon
thread, as ``prometheus_client.start_http_server`` does, and logs nothing per request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

HealthReport = Callable[[], tuple[int, dict[str, Any]]]
AlertsEndpoint = Callable[[bytes], tuple[int, dict[str, Any]]]
"""Takes the body of a ``POST /alerts``; answers the HTTP status and a JSON body."""
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    413: "Payload Too Large", 503: "Service Unavailable",
}  # fmt: skip
MAX_ALERTS_BODY = 4 * 1024 * 1024
"""Alertmanager sends a group of alerts per post; ours are a few hundred bytes each."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _json(start_response: StartResponse, code: int, body: dict[str, Any]) -> list[bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode()
    start_response(
        f"{code} {_REASONS.get(code, '')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
    )
    return [payload]


def _alerts(environ: dict[str, Any], start_response: StartResponse, take: AlertsEndpoint) -> Any:
    if environ.get("REQUEST_METHOD") != "POST":
        return _json(start_response, 405, {"error": "POST Alertmanager's webhook here"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 <= length <= MAX_ALERTS_BODY:
        return _json(start_response, 413, {"error": f"at most {MAX_ALERTS_BODY} bytes"})
    code, body = take(environ["wsgi.input"].read(length))
    return _json(start_response, code, body)


def operators_app(
    registry: CollectorRegistry,
    health: HealthReport | None,
    alerts: AlertsEndpoint | None = None,
) -> Any:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz" and health is not None:
            code, body = health()
            return _json(start_response, code, body)
        if path == "/alerts" and alerts is not None:
            answer: list[bytes] = _alerts(environ, start_response, alerts)
            return answer
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry,
    health: HealthReport | None = None,
    alerts: AlertsEndpoint | None = None,
) -> WSGIServer:
    """Start serving in a daemon thread; raises ``OSError`` when the port is taken."""
    server = make_server(
        host,
        port,
        operators_app(registry, health, alerts),
        server_class=_Server,
        handler_class=_Quiet,
    )
    threading.Thread(target=server.serve_forever, name="cw-operators-http", daemon=True).start()
    return server
