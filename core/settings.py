"""All configuration, read once from the environment, with defaults that run on this machine.

This is the only module that reads the environment (docs/operations.md lists every variable);
migrations, commands and bin/tidelog-run read django.conf.settings. Never import application code
here: settings are the root of the import graph.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


DEBUG = env_bool("DJANGO_DEBUG", False)
# Signs sessions (the admin) and CSRF tokens. Only a debug server may run on the well-known
# development key: anywhere else a forgotten variable would let anyone forge an admin session.
# (`make run` generates a key of its own in .tidelog/, the tests set a throwaway one.)
_DEVELOPMENT_SECRET_KEY = "tidelog-insecure-development-key-change-me-in-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", "") or (_DEVELOPMENT_SECRET_KEY if DEBUG else "")
if not DEBUG and SECRET_KEY in ("", _DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a secret of its own when DJANGO_DEBUG is off, e.g.\n"
        "  export DJANGO_SECRET_KEY=\"$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')\""
    )
ALLOWED_HOSTS = [h for h in env("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto itself (docker's nginx in
# production): Django then knows a request came over https, so the admin's CSRF origin check
# accepts the https:// origin, and the session and CSRF cookies are Secure. Never without such a
# proxy: a client could then claim https by sending the header.
TIDELOG_TLS_PROXY = env_bool("TIDELOG_TLS_PROXY", False)
if TIDELOG_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
# The dashboard's login (query host, query_side/dashboard); after it, the overview.
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tenancy",
    "command_side",
    "projections",
    "query_side",
]

MIDDLEWARE = [
    # Outermost: every answer carries its request id, and its time is counted whole.
    "observability.middleware.RequestIdMiddleware",
    "observability.middleware.QueryLatencyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, which answers static files (already compressed) before this: compresses
    # the query API's JSON for clients that accept gzip (an hourly breakdown is megabytes).
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The query API and the admin are the default root; the command API runs in its own process
# with core.settings_command, which swaps the root and trims the middleware for the hot path.
ROOT_URLCONF = "core.urls_query"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "core.wsgi_query.application"

DATABASE_URL = env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tidelog")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)}
# The query API may read from a replica. Unset, it reads the primary through the same
# connection, which keeps tests (one transaction per test) seeing their own writes.
QUERY_DATABASE_URL = env("QUERY_DATABASE_URL", "")
QUERY_DB_ALIAS = "default"
if QUERY_DATABASE_URL:
    DATABASES["query"] = dj_database_url.parse(QUERY_DATABASE_URL, conn_max_age=600)
    QUERY_DB_ALIAS = "query"
# An unreachable server (a dead host, a partition: no refusal comes back) fails a connection
# attempt after this long instead of the kernel's minutes; the command API then serves known keys
# from its cache. A `connect_timeout` in the URL wins.
TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS", 3)
for _database in DATABASES.values():
    _database.setdefault("OPTIONS", {}).setdefault("connect_timeout", TIDELOG_DATABASE_CONNECT_TIMEOUT_SECONDS)
    # No JIT: Tidelog's statements are index walks and aggregates over read models, never long
    # enough to pay for compiling (measured: 0.8 s of JIT in a 12 s aggregate; 190 ms for a
    # 0.1 ms insert of a projection batch). A `-c` of the URL's own `options` wins.
    _database["OPTIONS"].setdefault("options", "-c jit=off")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The ingestion views enforce contracts.limits.MAX_BODY_BYTES (5 MiB) themselves, with a clear code.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024

REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Every Redis key Tidelog writes starts with this prefix; tests give each run its own.
REDIS_PREFIX = env("TIDELOG_REDIS_PREFIX", "tidelog")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the admin's static files straight from the apps when collectstatic has not run.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenancy.auth.PersonalAPIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "tenancy.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "tenancy.openapi.AutoSchema",
}

# The OpenAPI document of both hosts, served by the query host at /api/v1/schema/ (core/openapi.py,
# docs/api.md "OpenAPI"). OpenAPI 3.1: its schemas are JSON Schema, as msgspec writes them for the
# command API's bodies. Public, like PostHog's; Swagger UI's files are local (the sidecar), never a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Tidelog",
    "DESCRIPTION": "Product analytics for mobile apps: the command API (ingestion, flag evaluation and "
    "administration; tag `command`) and the query API (tag `query`). Behind nginx both are one origin; under "
    "`make run` the command host is :8000 and the query host :8001. Every error is "
    '`{"code", "field", "message"}`; codes are never renamed. Prose: docs/api.md.',
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SCHEMA_PATH_PREFIX": "/api/v1/analytics/",
    "PREPROCESSING_HOOKS": ["core.openapi.api_routes_only"],
    "SERVE_PUBLIC": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl: Swagger UI would otherwise fetch a badge from validator.swagger.io on every load.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

# --- Ingestion -------------------------------------------------------------------------------
# The Redis buffer holds at most this many accepted requests (each at most
# contracts.limits.MAX_BATCH_EVENTS events); past it the command API answers 503.
TIDELOG_BUFFER_MAX_ENTRIES = env_int("TIDELOG_BUFFER_MAX_ENTRIES", 200_000)
# Seconds an SDK is told to wait when the buffer is full or Redis is down.
TIDELOG_RETRY_AFTER_SECONDS = env_int("TIDELOG_RETRY_AFTER_SECONDS", 5)
# A buffered entry read by a drainer that has not acknowledged it after this long is
# reclaimed by another drainer (the first one crashed or hung).
# Short, so a killed worker's batch is stored again within seconds; a live drainer whose batch
# takes longer only loses a race to a second copy of its own work, which the dedup ledger skips.
TIDELOG_RECLAIM_IDLE_MS = env_int("TIDELOG_RECLAIM_IDLE_MS", 5_000)
# A drain slot (the scheduler's token for one running drain) lives this long unless its drain
# refreshes it between batches: a worker killed mid-drain frees its slot this soon.
TIDELOG_DRAIN_SLOT_TTL_MS = env_int("TIDELOG_DRAIN_SLOT_TTL_MS", 5_000)
# Events one drain transaction aims at (requests hold 1 to 1,000 events each; the drainer sizes
# its reads from the recent mean). Bigger amortises more; smaller shows events sooner.
TIDELOG_DRAIN_EVENTS = env_int("TIDELOG_DRAIN_EVENTS", 5_000)
# How many drain actors may run at once (one per Dramatiq worker thread is right).
TIDELOG_DRAIN_PARALLELISM = env_int("TIDELOG_DRAIN_PARALLELISM", 2)
# (project, uuid) pairs are remembered this long for exact deduplication. It must outlast any
# SDK retry: PostHog's and Aptabase's mobile SDKs retry a failed flush for hours, at most days.
TIDELOG_DEDUP_WINDOW_DAYS = env_int("TIDELOG_DEDUP_WINDOW_DAYS", 14)
# Storage policies (command_side/storage.py), applied hourly by the scheduler's upkeep and at once
# by `manage.py event_store compress|retention`. Retention: raw events are kept this many whole
# UTC days before today, then dropped a day at a time (never one a projection has not applied);
# read models keep their history (docs/operations.md, "Retention"). 0 keeps every event forever.
TIDELOG_EVENT_RETENTION_DAYS = env_int("TIDELOG_EVENT_RETENTION_DAYS", 0)
# TimescaleDB only: its compression job compresses chunks older than this many days (0: off).
TIDELOG_EVENT_COMPRESS_AFTER_DAYS = env_int("TIDELOG_EVENT_COMPRESS_AFTER_DAYS", 7)
for _name in ("TIDELOG_EVENT_RETENTION_DAYS", "TIDELOG_EVENT_COMPRESS_AFTER_DAYS"):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} must be 0 (off) or a number of days, not {globals()[_name]}")
# Daily partitions are created this many days ahead (plain PostgreSQL only).
TIDELOG_PARTITIONS_AHEAD_DAYS = env_int("TIDELOG_PARTITIONS_AHEAD_DAYS", 3)
# Events older than this many days go to the default partition instead of one of their own.
TIDELOG_PARTITIONS_BACKFILL_DAYS = env_int("TIDELOG_PARTITIONS_BACKFILL_DAYS", 400)
# Seconds a project API key lookup stays cached in each command API process.
TIDELOG_KEY_CACHE_SECONDS = env_int("TIDELOG_KEY_CACHE_SECONDS", 30)
# Entries that cache holds at most (a 16-byte digest and an id each, never the key): unknown keys
# are evicted first, then the least recently used known ones.
TIDELOG_KEY_CACHE_MAX_ENTRIES = env_int("TIDELOG_KEY_CACHE_MAX_ENTRIES", 10_000)
# Seconds one drain message drains before it ends (the scheduler sends the next one): long enough
# to amortise the message, short enough that a stopping worker finishes it in time.
TIDELOG_DRAIN_BUDGET_SECONDS = env_float("TIDELOG_DRAIN_BUDGET_SECONDS", 5.0)
# Buffer entries (requests) waiting per extra parallel drain: one drain for a trickle, more as the
# backlog grows, up to TIDELOG_DRAIN_PARALLELISM.
TIDELOG_DRAIN_SLOT_BACKLOG = env_int("TIDELOG_DRAIN_SLOT_BACKLOG", 200)
# `auto`: a TimescaleDB hypertable where the extension can be created, native daily partitions
# otherwise; `postgres` forces the latter. Read once, by the event store's migration.
TIDELOG_EVENT_STORE_ENGINE = env("TIDELOG_EVENT_STORE_ENGINE", "auto").lower() or "auto"
if TIDELOG_EVENT_STORE_ENGINE not in ("auto", "postgres"):
    raise ImproperlyConfigured(
        f"TIDELOG_EVENT_STORE_ENGINE must be 'auto' or 'postgres', not {TIDELOG_EVENT_STORE_ENGINE!r}"
    )
# Crash tests only: the name of the fault point (command_side/faults.py) where the process dies.
TIDELOG_FAULT = env("TIDELOG_FAULT", "")

# --- Slow clients (the command API; docs/operations.md, "Slow clients") ----------------------
# Seconds a request body has to arrive whole, from the end of its headers; past it the client
# gets a 408 and its connection is closed. The body is read on granian's event loop, so a slow
# one holds a connection slot, never the worker's thread. nginx (docker) reads bodies with the
# same client_body_timeout before the API sees them.
TIDELOG_BODY_READ_TIMEOUT_SECONDS = env_float("TIDELOG_BODY_READ_TIMEOUT_SECONDS", 30.0)
# Connections each command API worker holds at once (granian's --backpressure); more wait in the
# listen backlog. Each may buffer one body of up to contracts.limits.MAX_BODY_BYTES (5 MiB).
TIDELOG_COMMAND_MAX_CONNECTIONS = env_int("TIDELOG_COMMAND_MAX_CONNECTIONS", 1024)
# How granian serves the command API. `rsgi` (the default, and `make run`'s) reads each body on
# the event loop within TIDELOG_BODY_READ_TIMEOUT_SECONDS: safe when clients reach the API
# directly. `wsgi` calls the app as soon as the headers are in and lets it read the body in the
# worker's one thread, with no deadline: only behind a proxy that reads whole bodies first
# (docker's nginx, proxy_request_buffering), where it takes 15-20% less CPU a capture
# (docs/performance.md).
TIDELOG_COMMAND_INTERFACE = env("TIDELOG_COMMAND_INTERFACE", "rsgi").lower()
if TIDELOG_COMMAND_INTERFACE not in ("rsgi", "wsgi"):
    raise ImproperlyConfigured(f"TIDELOG_COMMAND_INTERFACE must be 'rsgi' or 'wsgi', not {TIDELOG_COMMAND_INTERFACE!r}")
if TIDELOG_BODY_READ_TIMEOUT_SECONDS <= 0 or TIDELOG_COMMAND_MAX_CONNECTIONS < 1:
    raise ImproperlyConfigured(
        "TIDELOG_BODY_READ_TIMEOUT_SECONDS must be above 0 and TIDELOG_COMMAND_MAX_CONNECTIONS at least 1"
    )

# --- Query API -------------------------------------------------------------------------------
# A funnel reads the raw events of its steps' types in its range (query_side/funnels.py); one
# that would read more than this many (by the event counts read model) is refused with a 400
# range_too_large. Measured in docs/api.md ("Funnels"): ~3.5 µs an event on this machine, so
# the bound is ~5 s.
TIDELOG_FUNNEL_MAX_EVENTS = env_int("TIDELOG_FUNNEL_MAX_EVENTS", 1_500_000)
# ...and one that runs longer than this anyway (the counts trail the store) is stopped: the same 400.
TIDELOG_FUNNEL_TIMEOUT_SECONDS = env_float("TIDELOG_FUNNEL_TIMEOUT_SECONDS", 30.0)
# What the query API keeps per process while the read-model rows it came from are unchanged
# (decoded sets of users, buckets' answers, a funnel's days, aliases: query_side/row_cache.py);
# the least recently used go first past this; 0: off.
TIDELOG_QUERY_CACHE_MB = env_int("TIDELOG_QUERY_CACHE_MB", 256)
if TIDELOG_QUERY_CACHE_MB < 0:
    raise ImproperlyConfigured(
        f"TIDELOG_QUERY_CACHE_MB must be 0 (off) or a number of MB, not {TIDELOG_QUERY_CACHE_MB}"
    )

# --- Projections -----------------------------------------------------------------------------
TIDELOG_PROJECTION_BATCH = env_int("TIDELOG_PROJECTION_BATCH", 5_000)
# A replay's batches into its shadow tables (projections/replay.py); its last batch, under the
# live runner's lock at the swap, is a live one. docs/performance.md: "Rollups per event type".
TIDELOG_REPLAY_BATCH = env_int("TIDELOG_REPLAY_BATCH", 20_000)
for _name in ("TIDELOG_PROJECTION_BATCH", "TIDELOG_REPLAY_BATCH"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be a number of events, at least 1, not {globals()[_name]}")
TIDELOG_PROJECTION_POLL_SECONDS = env_float("TIDELOG_PROJECTION_POLL_SECONDS", 0.2)
# A batch is a few hundred milliseconds of work; one that runs this long is stuck (a lock held by
# someone else, a runaway plan): it is cancelled, rolled back and retried. Nothing is lost.
TIDELOG_PROJECTION_STATEMENT_TIMEOUT_SECONDS = env_float("TIDELOG_PROJECTION_STATEMENT_TIMEOUT_SECONDS", 60.0)
# A replay's swap renames the live tables, which waits for their readers; it gives up after this
# long, catches up again and retries, rather than stall dashboards behind one slow query.
TIDELOG_REPLAY_SWAP_LOCK_TIMEOUT_SECONDS = env_float("TIDELOG_REPLAY_SWAP_LOCK_TIMEOUT_SECONDS", 5.0)

# Sessions (projections/sessions.py): events without a session_id are grouped per (distinct_id,
# device_id) into sessions that close after this many minutes without an event, and are cut at
# this many hours from their start. Changing either means replaying the sessions projection.
TIDELOG_SESSION_INACTIVITY_MINUTES = env_int("TIDELOG_SESSION_INACTIVITY_MINUTES", 30)
TIDELOG_SESSION_MAX_HOURS = env_int("TIDELOG_SESSION_MAX_HOURS", 24)
if TIDELOG_SESSION_INACTIVITY_MINUTES < 1 or TIDELOG_SESSION_MAX_HOURS < 1:
    raise ImproperlyConfigured("TIDELOG_SESSION_INACTIVITY_MINUTES and TIDELOG_SESSION_MAX_HOURS must be at least 1")

# Analytics (query_side/analytics.py): a question the rollups cannot answer (a filter or breakdown
# on an event property, the median of events per user) scans raw events; one that would read more
# than this many is refused with a 400 range_too_large rather than run for seconds.
TIDELOG_RAW_SCAN_MAX_EVENTS = env_int("TIDELOG_RAW_SCAN_MAX_EVENTS", 1_000_000)

# --- Dramatiq --------------------------------------------------------------------------------
# Messages each worker process reads ahead (command_side.actors applies it at worker boot).
# Dramatiq's default (2 a thread) gives ~530 messages/s a worker; ~100 gives ~5,300 (measured,
# DESIGN.md). The variable is Dramatiq's own name for it, which its worker reads too.
DRAMATIQ_QUEUE_PREFETCH = env_int("dramatiq_queue_prefetch", 100)

# --- Processes of `make run` (bin/tidelog-run) -------------------------------------------------
# docker-compose.yml sets these per service instead (docs/deploy.md).
TIDELOG_HOST = env("TIDELOG_HOST", "127.0.0.1")
TIDELOG_COMMAND_WORKERS = env_int("TIDELOG_COMMAND_WORKERS", 2)
TIDELOG_QUERY_WORKERS = env_int("TIDELOG_QUERY_WORKERS", 1)
TIDELOG_COMMAND_PORT = env_int("TIDELOG_COMMAND_PORT", 8000)
TIDELOG_QUERY_PORT = env_int("TIDELOG_QUERY_PORT", 8001)
# A process that dies is started again after TIDELOG_RESTART_BACKOFF_SECONDS, doubling with each
# recent death up to the max; TIDELOG_RESTART_GIVE_UP_DEATHS deaths of one process within the
# window stop everything (it keeps dying: a person must look). Under docker-compose.yml,
# `restart: unless-stopped` restarts a container with Docker's own backoff instead.
TIDELOG_RESTART_BACKOFF_SECONDS = env_float("TIDELOG_RESTART_BACKOFF_SECONDS", 1.0)
TIDELOG_RESTART_BACKOFF_MAX_SECONDS = env_float("TIDELOG_RESTART_BACKOFF_MAX_SECONDS", 30.0)
TIDELOG_RESTART_GIVE_UP_DEATHS = env_int("TIDELOG_RESTART_GIVE_UP_DEATHS", 5)
TIDELOG_RESTART_GIVE_UP_WINDOW_SECONDS = env_float("TIDELOG_RESTART_GIVE_UP_WINDOW_SECONDS", 60.0)

# Plain lines for a terminal (`make run`), or one JSON object a line for a log pipeline (docker):
# TIDELOG_LOG_FORMAT=json. Either way each line carries its request's id (observability/logs.py).
TIDELOG_LOG_FORMAT = env("TIDELOG_LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "observability.logs.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "observability.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if TIDELOG_LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env("TIDELOG_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django logs every 4xx answer at WARNING: a caller's mistake (a wrong key, a bad
        # parameter) is answered in the response, not a fault to log. 5xx stay at ERROR.
        "django.request": {"level": env("TIDELOG_REQUEST_LOG_LEVEL", "ERROR")},
    },
}

# /readyz (observability/health.py): a host is unready past these. The buffer's share of
# TIDELOG_BUFFER_MAX_ENTRIES (past it the command API is about to answer 503 buffer_full), and a
# projection's lag in events (past it the query API's answers are that far behind).
# Where every process writes its Prometheus counts for the query API's /metrics to add up
# (observability/metrics.py). prometheus-client reads the same variable itself; bin/tidelog-run
# and the docker image set it. Unset: each process counts for itself alone.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", "")
TIDELOG_READY_MAX_BUFFER_FILL = env_float("TIDELOG_READY_MAX_BUFFER_FILL", 0.9)
TIDELOG_READY_MAX_PROJECTION_LAG = env_int("TIDELOG_READY_MAX_PROJECTION_LAG", 100_000)

# --- Feature flags -----------------------------------------------------------------------------
# How often each evaluating process asks Redis whether any flag changed (one GET of a counter).
# Between two checks evaluation does no I/O; a change reaches every evaluator within this.
TIDELOG_FLAG_CACHE_CHECK_SECONDS = env_float("TIDELOG_FLAG_CACHE_CHECK_SECONDS", 0.5)
