"""/healthz, /readyz (both hosts) and /metrics (the query host): plain Django views, outside the
API's authentication. /healthz says the process answers and touches nothing; /readyz says whether
this host should take traffic, and why not; /metrics is for Prometheus inside the deployment
(docker/nginx.conf does not publish it)."""

from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from observability import health, metrics


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_GET
def command_readyz(request: HttpRequest) -> HttpResponse:
    """The command API needs Redis to take events, and room in the buffer. PostgreSQL is reported
    but not required: events are buffered, and known keys are served from the cache
    (docs/operations.md), so a load balancer must not take every command API out at once. The
    projections' lag is the query API's to report: counting it here would hold one of ingestion's
    few threads."""
    status, body = health.readiness([
        health.redis_check(critical=True),
        health.buffer_check(critical=True),
        health.database_check(critical=False),
    ])  # fmt: skip
    return JsonResponse(body, status=status)


@require_GET
def query_readyz(request: HttpRequest) -> HttpResponse:
    """The query API needs PostgreSQL (and its replica, when it reads one), and read models within
    TIDELOG_READY_MAX_PROJECTION_LAG of the store, as it reads them. Redis and the buffer are
    reported: it reads neither."""
    checks = [health.database_check(critical=True)]  # keys, staff sessions: the primary
    alias = settings.QUERY_DB_ALIAS
    if alias != "default":  # the answers: QUERY_DATABASE_URL's replica
        checks.append(health.database_check(critical=True, alias=alias))
    checks += [
        health.projections_check(critical=True, alias=alias),
        health.redis_check(critical=False),
        health.buffer_check(critical=False),
    ]
    status, body = health.readiness(checks)
    return JsonResponse(body, status=status)


class LiveCollector(Collector):
    """What is read at scrape time: the buffer's depth and oldest entry, the dead letters, and each
    projection's events applied, lag and time since its last batch. A source that cannot be read
    is left out of the scrape, and `tidelog_probe_up` says so."""

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("tidelog_probe_up", "Whether /metrics could read each source.", labels=["source"])
        try:
            depth = health.buffer_depth(health.redis_client())
        except Exception:
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
            yield GaugeMetricFamily("tidelog_buffer_entries", "Buffer entries not yet stored.", value=depth.entries)
            yield GaugeMetricFamily(
                "tidelog_buffer_oldest_age_seconds", "How long the oldest buffer entry has waited.",
                value=depth.oldest_age_seconds,
            )  # fmt: skip
            yield GaugeMetricFamily(
                "tidelog_dead_letter_entries", "Entries in the dead-letter stream.", value=depth.dead_letters
            )
        alias = settings.QUERY_DB_ALIAS
        try:
            lags = health.projection_lags(alias=alias, timeout_ms=10 * health.PROBE_TIMEOUT_MS)
            replica = health.database_check(critical=False, alias=alias) if alias != "default" else None
        except Exception:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            applied = CounterMetricFamily(
                "tidelog_projection_events_applied", "Events each projection has applied.", labels=["projection"]
            )
            lag = GaugeMetricFamily(
                "tidelog_projection_lag_events",
                f"Events stored that each projection has not applied (exact up to {health.LAG_CAP:,}).",
                labels=["projection"],
            )
            for row in lags:
                applied.add_metric([row.name], row.events_applied)
                lag.add_metric([row.name], row.lag_events)
            yield applied
            yield lag
            if replica is not None and replica.detail.get("replay_delay_seconds") is not None:
                yield GaugeMetricFamily(
                    "tidelog_query_replica_delay_seconds",
                    "How far the query API's replica's replay is behind the primary (0: all received is replayed).",
                    value=replica.detail["replay_delay_seconds"],
                )
        yield up


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    live = CollectorRegistry()
    live.register(LiveCollector())
    content = generate_latest(metrics.registry()) + generate_latest(live)
    return HttpResponse(content, content_type=CONTENT_TYPE_LATEST)
