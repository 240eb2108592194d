"""What operators need of every service's app: ``/healthz``, ``/readyz``, ``/metrics``, and request ids.

``/healthz`` says the process is up (open to all, nothing touched); ``/readyz`` that its database and broker
answer (open to all, 503 when one does not); ``/metrics`` is Prometheus' text format for staff and machines
(an API key of any role: ``Authorization: Bearer clk_...``), as it shows volumes a stranger should not see.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from sqlalchemy import text

from shared import metrics
from shared.identity.web import public
from shared.logs import (
    REQUEST_ID_HEADER,
    accepted_request_id,
    reset_request_id,
    set_request_id,
)
from shared.problems import problem

log = logging.getLogger(__name__)

OPERATIONS = "closeloop.operations"
CRM_EVENTS_PATH = "/v1/events"
# Readiness waits this long for the database or the broker before saying it is not ready.
PROBE_TIMEOUT_SECONDS = 2

bp = Blueprint("operations", __name__)


def install_operations(app: Flask, service: str, runtime: Any) -> None:
    """Health and readiness probes, metrics, request ids and request counts for ``service``'s ``app``."""
    app.extensions[OPERATIONS] = (service, runtime)
    app.register_blueprint(bp)
    app.before_request_funcs.setdefault(None, []).insert(0, _begin_request)
    app.after_request(_count_response)
    app.teardown_request(_end_request)
    outbox = getattr(runtime, "outbox", None)
    if outbox is not None and hasattr(outbox, "backlog"):
        metrics.register_gauges(service, "outbox", metrics.outbox_gauges(outbox))


_REQUEST_ID_ENVIRON = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


def _begin_request() -> None:
    request_id = accepted_request_id(request.environ.get(_REQUEST_ID_ENVIRON))
    globals_ = g._get_current_object()  # type: ignore[attr-defined]  # once, not through the proxy each time
    globals_.request_id = request_id
    globals_.request_id_token = set_request_id(request_id)


# Counters' children by label values, bound once: prometheus_client looks them up under a lock each time.
_REQUESTS_COUNTED: dict[tuple[str, str, int], Any] = {}
_CRM_EVENTS_COUNTED: dict[int, Any] = {}


def _count_response(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]  # once, not through the proxy each time
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    status = response.status_code
    key = (current_app.extensions[OPERATIONS][0], req.endpoint or "unmatched", status)
    counter = _REQUESTS_COUNTED.get(key)
    if counter is None:
        counter = _REQUESTS_COUNTED[key] = metrics.HTTP_REQUESTS.labels(key[0], key[1], str(status))
    counter.inc()
    if req.method == "POST" and req.path == CRM_EVENTS_PATH:
        counter = _CRM_EVENTS_COUNTED.get(status)
        if counter is None:
            outcome = {202: "accepted", 200: "duplicate"}.get(status, "refused" if status < 500 else "error")
            counter = _CRM_EVENTS_COUNTED[status] = metrics.CRM_EVENTS.labels(outcome)
        counter.inc()
    return response


def _end_request(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        # Set in another context (a test client's preserved context): nothing to undo.
        with contextlib.suppress(ValueError):
            reset_request_id(token)


@bp.get("/healthz")
@public  # a load balancer's probe; it says nothing but "up"
def healthz() -> Response:
    service, _ = current_app.extensions[OPERATIONS]
    return jsonify({"status": "up", "service": service})


@bp.get("/readyz")
@public  # an orchestrator's probe; it names the failing dependency, never a URL or a secret
def readyz() -> Response:
    service, runtime = current_app.extensions[OPERATIONS]
    settings = getattr(runtime, "settings", None)
    broker_url = settings.broker_url if settings is not None else "memory://"
    checks = {"database": _database_answers(runtime), "broker": _broker_answers(broker_url)}
    if all(result == "ok" for result in checks.values()):
        return jsonify({"status": "ready", "service": service, "checks": checks})
    response = problem(503, "Service Unavailable", f"{service} is not ready.")
    body = response.get_json()
    body["checks"] = checks
    response.set_data(jsonify(body).get_data())
    return response


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


def _database_answers(runtime: Any) -> str:
    database = getattr(runtime, "database", None)
    if database is None:
        return "ok"  # an in-memory unit of work (unit tests)
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        log.warning("readiness: the database does not answer: %s", type(error).__name__)
        return "unavailable"
    return "ok"


def _broker_answers(url: str) -> str:
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            client = redis.Redis.from_url(
                url, socket_timeout=PROBE_TIMEOUT_SECONDS, socket_connect_timeout=PROBE_TIMEOUT_SECONDS
            )
            try:
                client.ping()
            finally:
                client.close()
        elif url.startswith(("amqp://", "amqps://")):
            import pika

            parameters = pika.URLParameters(url)
            parameters.socket_timeout = PROBE_TIMEOUT_SECONDS
            parameters.blocked_connection_timeout = PROBE_TIMEOUT_SECONDS
            parameters.connection_attempts = 1
            pika.BlockingConnection(parameters).close()
        # memory:// is the process's own queue: up as long as the process is.
    except Exception as error:
        log.warning("readiness: the broker does not answer: %s", type(error).__name__)
        return "unavailable"
    return "ok"
