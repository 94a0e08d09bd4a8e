"""Settings for webhookhub, read from the environment.

With no environment at all this is the *embedded default*: SQLite and a
filesystem Celery transport under ``var/``, a generated SECRET_KEY and an
encryption key derived from it (a system check says so). ``WEBHOOKHUB_ENV=production``
refuses to start without a real SECRET_KEY, broker and encryption key.
"""

import base64
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("WEBHOOKHUB_DATA_DIR", BASE_DIR / "var"))
ENVIRONMENT = os.environ.get("WEBHOOKHUB_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"


def _positive_int(name: str) -> int:
    value = os.environ[name]
    if not value.isdigit() or int(value) < 1:
        raise ImproperlyConfigured(f"{name} must be a positive whole number, not {value!r}.")
    return int(value)


def _metrics_token(name: str) -> str:
    value = os.environ[name].strip()
    if value and (len(value) < 16 or not value.isprintable() or " " in value):
        raise ImproperlyConfigured(f"{name} must be at least 16 characters without spaces (or unset: metrics off).")
    return value


def _wake_up(name: str) -> str:
    value = os.environ[name].strip().lower()
    if value not in ("auto", "notify", "broker"):
        raise ImproperlyConfigured(f"{name} must be auto, notify or broker, not {value!r}.")
    return value


def _schema_mode(name: str) -> str:
    value = os.environ[name].strip().lower()
    if value not in ("off", "warn", "enforce"):
        raise ImproperlyConfigured(f"{name} must be off, warn or enforce, not {value!r}.")
    return value


def _retry_schedules(name: str) -> dict[str, list[float]]:
    """A JSON object of schedule name to a list of seconds, e.g. {"quick": [5, 30, 120], "none": []}."""
    example = 'e.g. {"quick": [5, 30, 120], "patient": [60, 3600, 86400]}'
    try:
        value = json.loads(os.environ[name])
    except ValueError as exc:
        problem = f"{name} must be a JSON object of name to a list of seconds, {example}: {exc}."
        raise ImproperlyConfigured(problem) from exc
    if not isinstance(value, dict) or not value:
        raise ImproperlyConfigured(f"{name} must be a non-empty JSON object of name to a list of seconds, {example}.")
    for schedule, delays in value.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", schedule):
            raise ImproperlyConfigured(
                f"{name}: {schedule!r} is not a schedule name (lower-case letters, digits, - and _; at most 40)."
            )
        if not isinstance(delays, list) or not all(
            isinstance(delay, int | float) and not isinstance(delay, bool) and math.isfinite(delay) for delay in delays
        ):
            raise ImproperlyConfigured(f"{name}: {schedule!r} must be a list of seconds, {example}.")
    return value


def _non_negative_int(name: str) -> int:
    value = os.environ[name].strip()
    if not value.isdigit():
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds (0 or more), not {value!r}.")
    return int(value)


def _shares(name: str) -> list[float]:
    """Comma-separated shares of a period, each above 0 and below 1, e.g. 0.5,0.9; empty: none."""
    shares = []
    for item in _env_list(name):
        try:
            share = float(item)
        except ValueError:
            share = math.nan
        if not 0 < share < 1:
            raise ImproperlyConfigured(
                f"{name} must be shares between 0 and 1, comma-separated (e.g. 0.5,0.9), not {item!r}."
            )
        shares.append(share)
    return shares


def _public_url(name: str) -> str:
    value = os.environ[name].strip().rstrip("/")
    if value and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        raise ImproperlyConfigured(
            f"{name} must be an http(s) URL such as https://webhooks.example.com, not {value!r}."
        )
    return value


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set when WEBHOOKHUB_ENV=production.")
    return value


def _local_secret_key() -> str:
    """A per-checkout key kept in DATA_DIR so web, worker and beat agree on it."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = _require("SECRET_KEY")
    if SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("SECRET_KEY must be a random value of at least 32 characters.")
    CELERY_BROKER_URL = _require("CELERY_BROKER_URL")
    ENCRYPTION_KEYS = _env_list("WEBHOOKHUB_ENCRYPTION_KEY")
    if not ENCRYPTION_KEYS:
        raise ImproperlyConfigured("WEBHOOKHUB_ENCRYPTION_KEY must be set when WEBHOOKHUB_ENV=production.")
    ENCRYPTION_KEY_DERIVED = False
else:
    SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    ENCRYPTION_KEYS = _env_list("WEBHOOKHUB_ENCRYPTION_KEY")
    ENCRYPTION_KEY_DERIVED = not ENCRYPTION_KEYS
    if ENCRYPTION_KEY_DERIVED:
        digest = hashlib.sha256(b"webhookhub-encryption:" + SECRET_KEY.encode()).digest()
        ENCRYPTION_KEYS = [base64.urlsafe_b64encode(digest).decode()]

DEBUG = _env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here, not from a CDN
    "accounts",
    "events",
    "subscriptions",
    "deliveries",
    "webhookhub.web",  # the entry points: admin, API, dashboard, trigger view, /metrics, probes, commands
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webhookhub.web.json_errors.JsonErrorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webhookhub.urls"
WSGI_APPLICATION = "webhookhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Searched before the apps' folders, so that the web layer's admin/base_site.html (branding,
        # styles) wins over django.contrib.admin's; the web layer's other templates are found either way.
        "DIRS": [BASE_DIR / "webhookhub" / "web" / "templates"],
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

_default_database = f"sqlite:///{DATA_DIR / 'webhookhub.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", _default_database),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Several processes (web, worker, beat, tests) share the file: wait for locks
    # instead of failing, and keep the test database on disk so a worker
    # process can see it.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
else:
    # The hot statements (ground.db.bound_cursor) are prepared on the server after their fifth run on a
    # connection. Django leaves this off for connection poolers: PgBouncer's transaction pooling keeps
    # prepared statements apart only from version 1.21 on (max_prepared_statements); set it false before.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if _env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))  # seconds; mail goes out from a Celery task
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))  # for the file-based backend
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "webhookhub@localhost")

if PRODUCTION:
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = _env_bool("CSRF_COOKIE_SECURE", True)
    # TLS ends at the load balancer or proxy, which must set (and strip from clients) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapes come from inside
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)

LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "ground.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # 4xx answers are in the access log already (runserver, gunicorn --access-logfile); 5xx stay.
        "django.request": {"level": "ERROR"},
        # One line per task and per beat tick is noise at webhook rates.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
    },
}

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "webhookhub.web.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["webhookhub.web.api.permissions.IsTenantAdmin"],
    "DEFAULT_PARSER_CLASSES": [
        "webhookhub.web.api.parsers.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "webhookhub.web.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webhookhub.web.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["webhookhub.web.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("WEBHOOKHUB_API_KEY_RATE", "6000/min"),
        "publish": os.environ.get("WEBHOOKHUB_PUBLISH_RATE", "6000/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "webhookhub API",
    "DESCRIPTION": "Configure webhook endpoints, publish events and inspect deliveries. "
    "Authenticate with `Authorization: Bearer <tenant API key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "webhookhub.web.api.schema.add_error_responses",
        "webhookhub.web.api.schema.forbid_additional_properties",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "deliveries.models.DeliveryStatus",
        "ReplayStatusEnum": "deliveries.services.actions.REPLAYABLE_STATUSES",
        "AttemptOutcomeEnum": "deliveries.models.AttemptOutcome",
    },
}

# --- Celery ---------------------------------------------------------------
# The database is the source of truth; the broker only rings the doorbell, so
# tasks are acknowledged on receipt and a lost message is recovered by the
# sweeper when its lease runs out.
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_WORKER_PREFETCH_MULTIPLIER", "4"))
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# Publishing must not hang when the broker is down: fail fast, the sweeper
# re-sends the doorbell once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("WEBHOOKHUB_BROKER_DIR", DATA_DIR / "broker"))
    for _sub in ("queue", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport with messages written whole (its own can kill the consuming worker).
    CELERY_BROKER_TRANSPORT = "ground.embedded_broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # ack_emulation off: a message is the worker's once received (tasks ack early anyway), so an ack
    # never needs Redis. With it on, Redis dying between receipt and ack left an unacked message
    # whose restore, on the broken connection, crashed the worker ("Unrecoverable error: 'NoneType'
    # object has no attribute 'hostname'", seen in the fault suite). A lost doorbell costs nothing:
    # the work is in the database and the sweeper rings again.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 10, "ack_emulation": False}
# --- cache ------------------------------------------------------------------
# What several processes must share (the API's throttle counts) lives in the cache. CACHE_URL
# (redis://...) makes it one Redis for every web process; without it each process counts on
# its own (fine for the embedded single process; `check --deploy` warns in production).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "webhookhub",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis:// or rediss:// URL, not {CACHE_URL.split(':')[0]!r}.")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery closes the Django connection around every task unless this is set:
# reconnecting per task costs more than the task itself.
CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))

# --- webhookhub -------------------------------------------------------------
# Read through ground.conf.webhookhub_settings(), which fills in defaults.
WEBHOOKHUB: dict[str, object] = {
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    "ENCRYPTION_KEY_DERIVED": ENCRYPTION_KEY_DERIVED,
    "REQUIRE_HTTPS": _env_bool("WEBHOOKHUB_REQUIRE_HTTPS", PRODUCTION),
}
_optional_env: dict[str, tuple[str, Callable[[str], object]]] = {
    "ALLOW_PRIVATE_NETWORKS": ("WEBHOOKHUB_ALLOW_PRIVATE_NETWORKS", _env_list),
    "RETRY_SCHEDULE": ("WEBHOOKHUB_RETRY_SCHEDULE", lambda name: [float(v) for v in _env_list(name)]),
    "RETRY_SCHEDULES": ("WEBHOOKHUB_RETRY_SCHEDULES", _retry_schedules),
    "SWEEP_INTERVAL_SECONDS": ("WEBHOOKHUB_SWEEP_INTERVAL_SECONDS", lambda name: float(os.environ[name])),
    "SEND_LEASE_SECONDS": ("WEBHOOKHUB_SEND_LEASE_SECONDS", lambda name: float(os.environ[name])),
    "AUTO_DISABLE_AFTER_SECONDS": ("WEBHOOKHUB_AUTO_DISABLE_AFTER_SECONDS", lambda name: float(os.environ[name])),
    "MAX_PAYLOAD_BYTES": ("WEBHOOKHUB_MAX_PAYLOAD_BYTES", lambda name: int(os.environ[name])),
    "SCHEMA_MODE": ("WEBHOOKHUB_SCHEMA_MODE", lambda name: _schema_mode(name)),
    "TRIGGER_RATE_LIMIT_PER_MINUTE": ("WEBHOOKHUB_TRIGGER_RATE_LIMIT_PER_MINUTE", lambda name: int(os.environ[name])),
    "RETENTION_DAYS": ("WEBHOOKHUB_RETENTION_DAYS", lambda name: _positive_int(name)),
    "ORDERING_BLOCKED_AFTER_SECONDS": ("WEBHOOKHUB_ORDERING_BLOCKED_AFTER_SECONDS", lambda name: _positive_int(name)),
    "METRICS_TOKEN": ("WEBHOOKHUB_METRICS_TOKEN", lambda name: _metrics_token(name)),
    "METRICS_TENANT_LABELS": ("WEBHOOKHUB_METRICS_TENANT_LABELS", lambda name: _env_bool(name, False)),
    "WAKE_UP": ("WEBHOOKHUB_WAKE_UP", lambda name: _wake_up(name)),
    "DISABLE_WARNING_AFTER_SECONDS": ("WEBHOOKHUB_DISABLE_WARNING_AFTER_SECONDS", _non_negative_int),
    "DISABLE_WARNING_SHARES": ("WEBHOOKHUB_DISABLE_WARNING_SHARES", _shares),
    "PUBLIC_URL": ("WEBHOOKHUB_PUBLIC_URL", _public_url),
}
for _key, (_name, _parse) in _optional_env.items():
    if _name in os.environ:
        WEBHOOKHUB[_key] = _parse(_name)
if WEBHOOKHUB.get("WAKE_UP") == "notify" and "postgresql" not in DATABASES["default"]["ENGINE"]:
    raise ImproperlyConfigured("WEBHOOKHUB_WAKE_UP=notify needs PostgreSQL (LISTEN/NOTIFY); use auto or broker.")
if not PRODUCTION and "PUBLIC_URL" not in WEBHOOKHUB:
    # Links in e-mails lead to the local web process (scripts/run); production links only where it is set.
    WEBHOOKHUB["PUBLIC_URL"] = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
if not PRODUCTION and "ALLOW_PRIVATE_NETWORKS" not in WEBHOOKHUB:
    # The local demo delivers to a receiver on this machine.
    WEBHOOKHUB["ALLOW_PRIVATE_NETWORKS"] = ["127.0.0.0/8", "::1/128"]
