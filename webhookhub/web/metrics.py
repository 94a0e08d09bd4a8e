"""``GET /metrics``: Prometheus text format, for a scraper holding ``WEBHOOKHUB_METRICS_TOKEN``.

Off (404) while the token is unset; with it, a request without ``Authorization: Bearer <token>``
gets 401 and nothing is read. The numbers are the cluster's, read from the database
(``deliveries.numbers.metrics``), so any web process answers the same: scrape one target.
Labels are outcomes and states, and the tenant's slug only with
``WEBHOOKHUB_METRICS_TENANT_LABELS`` on; never a URL, header or secret.
"""

import hmac

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

from deliveries.models import LATENCY_BOUNDS_MS
from deliveries.numbers.metrics import Snapshot, snapshot
from ground.conf import setting

_OUTCOMES = ("succeeded", "retrying", "failed")


class _Families:
    """Builds each family with the tenant label only when the snapshot is split by tenant."""

    def __init__(self, by_tenant: bool) -> None:
        self.by_tenant = by_tenant

    def labels(self, *names: str) -> list[str]:
        return [*names, "tenant"] if self.by_tenant else list(names)

    def values(self, key: str, *values: str) -> list[str]:
        return [*values, key] if self.by_tenant else list(values)

    def build(self, numbers: Snapshot):
        events = CounterMetricFamily("webhookhub_events_published", "Events published.", labels=self.labels())
        created = CounterMetricFamily(
            "webhookhub_deliveries_created",
            "Deliveries created by publishing, one per endpoint an event went to.",
            labels=self.labels(),
        )
        for key, value in numbers.events_published.items():
            events.add_metric(self.values(key), value)
        for key, value in numbers.deliveries_created.items():
            created.add_metric(self.values(key), value)
        violations = CounterMetricFamily(
            "webhookhub_schema_violations",
            "Events published although their data broke their type's JSON Schema (schema mode warn).",
            labels=self.labels(),
        )
        for key, value in numbers.schema_violations.items():
            violations.add_metric(self.values(key), value)

        attempts = CounterMetricFamily(
            "webhookhub_attempts",
            "Delivery attempts recorded, by outcome: succeeded, retrying (will be retried), failed (for good).",
            labels=self.labels("outcome"),
        )
        duration = HistogramMetricFamily(
            "webhookhub_attempt_duration_seconds",
            "Time from sending a request to its answer (or to the error) of attempts that made a request.",
            labels=self.labels(),
        )
        for key, counts in numbers.attempts.items():
            for outcome in _OUTCOMES:
                attempts.add_metric(self.values(key, outcome), getattr(counts, outcome))
            cumulative, buckets = 0, list[tuple[str, float]]()
            for bound_ms, count in zip(LATENCY_BOUNDS_MS, counts.latency, strict=False):
                cumulative += count
                buckets.append((_seconds(bound_ms), cumulative))
            buckets.append(("+Inf", counts.requests))
            duration.add_metric(self.values(key), buckets, sum_value=counts.duration_ms_sum / 1000)

        pending = GaugeMetricFamily(
            "webhookhub_deliveries_pending",
            "Deliveries not finished, by state: due (may be sent now), in_flight (a worker holds it), scheduled.",
            labels=self.labels("state"),
        )
        for (key, state), value in numbers.pending.items():
            pending.add_metric(self.values(key, state), value)
        lag = GaugeMetricFamily(
            "webhookhub_delivery_lag_seconds",
            "Age of the oldest due delivery no worker holds, of endpoints neither paused nor with the circuit open.",
            labels=self.labels(),
        )
        for key, seconds in numbers.lag_seconds.items():
            lag.add_metric(self.values(key), seconds)
        endpoints = GaugeMetricFamily(
            "webhookhub_endpoints",
            "Endpoints by state: enabled (sending), paused (Retry-After), circuit_open, disabled.",
            labels=self.labels("state"),
        )
        for (key, state), value in numbers.endpoints.items():
            endpoints.add_metric(self.values(key, state), value)
        keys_blocked = GaugeMetricFamily(
            "webhookhub_ordering_keys_blocked",
            "Ordering keys of ordered endpoints whose oldest pending delivery has waited longer than "
            "ORDERING_BLOCKED_AFTER_SECONDS with others of the key behind it.",
            labels=self.labels(),
        )
        for key, value in numbers.ordering_keys_blocked.items():
            keys_blocked.add_metric(self.values(key), value)
        limited = GaugeMetricFamily(
            "webhookhub_endpoints_concurrency_limited",
            "Enabled endpoints whose adaptive concurrency holds them below their max_in_flight, by what last cut "
            "the limit: 429, 503, timeout, refused (connections), latency (answers slower than their baseline).",
            labels=self.labels("limited_by"),
        )
        for (key, cause), value in numbers.concurrency_limited.items():
            limited.add_metric(self.values(key, cause), value)
        return [events, created, violations, attempts, duration, pending, lag, endpoints, keys_blocked, limited]


def _seconds(milliseconds: int) -> str:
    return floatToGoString(milliseconds / 1000)  # how prometheus-client writes "le" ("0.005", "15.0")


class _SnapshotCollector:
    def __init__(self, numbers: Snapshot, by_tenant: bool) -> None:
        self.numbers, self.by_tenant = numbers, by_tenant

    def collect(self):
        return _Families(self.by_tenant).build(self.numbers)


def _authorized(request, token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics(request):
    token = setting("METRICS_TOKEN")
    if not token:
        raise Http404("Metrics are off: set WEBHOOKHUB_METRICS_TOKEN.")
    if not _authorized(request, token):
        response = HttpResponse("A valid 'Authorization: Bearer <token>' header is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    by_tenant = setting("METRICS_TENANT_LABELS")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot(now=timezone.now(), by_tenant=by_tenant), by_tenant))
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
