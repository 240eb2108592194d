"""Prometheus metrics (``prometheus_client``): counters kept as things happen, gauges read at scrape time.

Counters and histograms live in the process that counts them; under gunicorn with several workers set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory per start) and every worker's counts are summed at scrape
time. Gauges about stored state (the outbox's backlog, open and overdue tasks) are read from the databases
of the services this process runs, when ``/metrics`` is scraped, so they are right whichever process
answers.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from shared.clock import utcnow
from shared.imports import submodule_without_package_init

# Counting needs prometheus_client's metric classes alone. Its package __init__ also loads the exposition
# (http.server, wsgiref, urllib.request, gzip) and the default collectors: some 1.5 MiB resident in a web
# process and 3.5 MiB in a worker or a clock, most of which never answer /metrics. The first scrape
# (``exposition``) runs that __init__ as usual, registering the default collectors before it collects.
# ``values`` before ``metrics``: metrics.py asks the package for it (``from . import values``), which would
# run the __init__ if the submodule were not loaded yet.
for _submodule in ("values", "metrics", "metrics_core", "registry"):
    submodule_without_package_init("prometheus_client", _submodule)

from prometheus_client.metrics import Counter, Histogram  # noqa: E402 (after the submodules above)
from prometheus_client.metrics_core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector, CollectorRegistry  # noqa: E402

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

HTTP_REQUESTS = Counter(
    "closeloop_http_requests_total",
    "HTTP requests answered, by service, endpoint and status code",
    ["service", "endpoint", "status"],
)
CRM_EVENTS = Counter(
    "closeloop_crm_events_total",
    "Signed CRM events received: accepted, duplicate, or refused (any 4xx: signature, schema, limits)",
    ["outcome"],
)
SURVEY_DECISIONS = Counter(
    "closeloop_survey_decisions_total",
    "Survey decisions on new CRM events: invited, delayed or skipped, with the reason code",
    ["decision", "reason_code"],
)
SENDS = Counter(
    "closeloop_sends_total",
    "Provider calls sending an email or SMS, by channel and outcome (sent, transient, permanent, error)",
    ["channel", "outcome"],
)
PROVIDER_LATENCY = Histogram(
    "closeloop_provider_request_seconds",
    "How long one provider call sending a message took, by channel",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_LAG = Histogram(
    "closeloop_event_lag_seconds",
    "Queue lag: from an event's emission to its consumer acting on it, by consuming service and type",
    ["service", "event_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600),
)

# Reads gauges of a service: (name, help, value) triples, labelled with the service's name.
GaugeSource = Callable[[], Iterable[tuple[str, str, float]]]
_GAUGE_SOURCES: dict[tuple[str, str], GaugeSource] = {}


def register_gauges(service: str, kind: str, source: GaugeSource) -> None:
    """Read ``source`` at each scrape; a later registration of the same service and kind replaces it."""
    _GAUGE_SOURCES[(service, kind)] = source


class _StoredStateCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        for (service, _kind), source in sorted(_GAUGE_SOURCES.items(), key=lambda item: item[0]):
            try:
                values = list(source())
            except Exception:  # a database down must not hide every other metric
                log.warning("could not read %s's gauges for /metrics", service, exc_info=True)
                continue
            for name, description, value in values:
                family = families.setdefault(name, GaugeMetricFamily(name, description, labels=["service"]))
                family.add_metric([service], value)
        yield from families.values()


def outbox_gauges(outbox: Any) -> GaugeSource:
    """The backlog of a service's outbox (rows due or waiting for an acknowledgement) and its oldest's age."""

    def read() -> list[tuple[str, str, float]]:
        backlog, oldest = outbox.backlog()
        age = (utcnow() - oldest).total_seconds() if oldest else 0.0
        return [
            ("closeloop_outbox_backlog", "Outbox rows not yet acknowledged by their consumer", backlog),
            ("closeloop_outbox_oldest_age_seconds", "Age of the oldest unacknowledged outbox row", age),
        ]

    return read


def exposition() -> tuple[bytes, str]:
    """The body and content type ``/metrics`` answers."""
    # Here, not at the top: the exposition and its package's __init__ load at the first scrape (above).
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    stored = CollectorRegistry(auto_describe=False)
    stored.register(_StoredStateCollector())
    return counted + generate_latest(stored), CONTENT_TYPE_LATEST


def observe_event_lag(service: str, event_type: str, envelope: dict[str, Any]) -> None:
    """Queue lag of an event ``service`` has just acted on: now minus the envelope's ``occurred_at``."""
    try:
        emitted = datetime.fromisoformat(envelope["occurred_at"])
    except (KeyError, TypeError, ValueError):
        return
    if emitted.tzinfo is not None:
        EVENT_LAG.labels(service, event_type).observe(max((utcnow() - emitted).total_seconds(), 0.0))


def count_decision(decision: str, reason_code: str | None) -> None:
    """Count one survey decision about a CRM event, once its transaction has committed."""
    SURVEY_DECISIONS.labels(decision, str(reason_code or "")).inc()


def times_sends(send: F) -> F:
    """Time each provider call ``send(runtime, delivery)`` makes and count its outcome by channel."""

    @functools.wraps(send)
    def timed(runtime: Any, delivery: Any, *args: Any, **kwargs: Any) -> Any:
        channel = str(getattr(delivery, "channel", "unknown"))
        started = time.perf_counter()
        outcome = "error"
        try:
            receipt = send(runtime, delivery, *args, **kwargs)
            outcome = "sent"
            return receipt
        except Exception as error:
            name = type(error).__name__
            outcome = "transient" if "Transient" in name else "permanent" if "Permanent" in name else "error"
            raise
        finally:
            PROVIDER_LATENCY.labels(channel).observe(time.perf_counter() - started)
            SENDS.labels(channel, outcome).inc()

    return timed  # type: ignore[return-value]
