"""One port per service for operators: ``/metrics`` (Prometheus) and ``/healthz`` (JSON).

prometheus-client's own WSGI app serves the metrics; ``/healthz`` asks the service's health
(a function giving the HTTP status and the body) at request time. The server runs in a daemon
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
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def operators_app(registry: CollectorRegistry, health: HealthReport | None) -> Any:
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and health is not None:
            code, body = health()
            payload = json.dumps(body, ensure_ascii=False).encode()
            start_response(
                f"{code} {_REASONS.get(code, '')}",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    return app


def serve(
    host: str, port: int, registry: CollectorRegistry, health: HealthReport | None = None
) -> WSGIServer:
    """Start serving in a daemon thread; raises ``OSError`` when the port is taken."""
    server = make_server(
        host, port, operators_app(registry, health), server_class=_Server, handler_class=_Quiet
    )
    threading.Thread(target=server.serve_forever, name="cw-operators-http", daemon=True).start()
    return server
