"""Heptora settings, read from the environment.

With no environment variables at all Heptora runs on the EMBEDDED DEFAULT: a SQLite file, a Celery broker
that needs no server (kombu's filesystem transport) and a database cache, all under ``var/``. Setting
``DATABASE_URL=postgres://…`` and ``REDIS_URL=redis://…`` switches to the production stack; the code path
is the same. Every variable is listed in docs/deploy.md.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from heptora.env import env_bool, env_float, env_float_item, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("HEPTORA_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _embedded_secret_key() -> str:
    # The embedded default must work with zero configuration, yet sessions and signed links must survive a
    # restart, so the generated key is kept beside the SQLite file rather than regenerated per process.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if not env_str("SECRET_KEY") and env_str("DATABASE_URL") and not env_str("DATABASE_URL").startswith("sqlite"):
    # Several web machines with generated keys would reject each other's sessions and signed links.
    raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is (the production stack).")
SECRET_KEY = env_str("SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Behind HTTPS (HEPTORA_HTTPS=true): secure cookies, redirect plain HTTP, HSTS. Set
# HEPTORA_TRUST_X_FORWARDED_PROTO=true only when a proxy you control sets X-Forwarded-Proto.
HEPTORA_HTTPS = env_bool("HEPTORA_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HEPTORA_HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HEPTORA_HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HEPTORA_HTTPS else 0, minimum=0)
SECURE_REDIRECT_EXEMPT = [r"^health/$"]
if env_bool("HEPTORA_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "guardian",
    "adminsortable2",
    "django_celery_beat",
    # Heptora: the core first, then the listeners and front doors that build on it.
    "executions",
    "forms_app",
    "approvals",
    "webhooks",
    "notifications",
    "api_app",
    "chat_app",
]

MIDDLEWARE = [
    "api_app.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "heptora.urls"
WSGI_APPLICATION = "heptora.wsgi.application"
ASGI_APPLICATION = "heptora.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "heptora" / "templates"],
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

# --- Database -------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend with a health check only for connections idle for a second (heptora/db).
        DATABASES["default"]["ENGINE"] = "heptora.db.postgresql"
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "heptora.sqlite3",
            # A file, not memory, so that a real worker process can share the test database.
            "TEST": {"NAME": str(VAR_DIR / "test-heptora.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one file. WAL lets readers go on while one process
    # writes, IMMEDIATE transactions take the write lock up front (no lock-upgrade deadlock), and the
    # timeout makes a writer wait for another instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker -----------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": env_str("HEPTORA_CACHE_PREFIX", "heptora")}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Executions guard against duplicate delivery themselves (see executions.tasks), so a redelivery
        # of a long-running message is harmless; keep it rare anyway.
        "visibility_timeout": env_int("HEPTORA_BROKER_VISIBILITY_TIMEOUT", 6 * 3600, minimum=60),
        # Kombu's acknowledgement emulation keeps every delivered message in a Redis hash until it is
        # acknowledged: two Redis transactions per message in the worker's consumer loop, which also
        # blocks meanwhile. Its use: the messages of a worker killed hard come back after the visibility
        # timeout. Beat's sweeps bring back what they were for without it (executions republished or
        # requeued, chat updates redelivered, e-mails resent, webhook deliveries requeued). Without it,
        # unstarted messages still go back to the queue at the end of a warm shutdown, and a pool
        # process's death still requeues its message (reject_on_worker_lost); the visibility timeout
        # above then does nothing. docs/deploy.md says when to turn it on.
        "ack_emulation": env_bool("HEPTORA_BROKER_ACK_EMULATION", False),
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "heptora_cache"}}
    BROKER_DIR = VAR_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }

CELERY_TASK_DEFAULT_QUEUE = env_str("HEPTORA_QUEUE", "heptora")
# Celery's Django fixup closes the database connection around every task unless this is set, so each
# execution would open a new PostgreSQL connection before it could claim its row (half of a trivial
# execution's cost). The engine calls close_old_connections() at the start of each run, which still
# honours CONN_MAX_AGE and drops broken connections.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 100)
CELERY_TASK_IGNORE_RESULT = True  # Outcomes live on the Execution row, not in a result backend.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- Auth -----------------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
GUARDIAN_RAISE_403 = False
ANONYMOUS_USER_NAME = None  # Anonymous access is decided per form, never through a guardian pseudo-user.
LOGIN_URL = "login"  # the web forms' sign-in page (admin keeps its own)
LOGIN_REDIRECT_URL = "forms_app:list"
LOGOUT_REDIRECT_URL = "forms_app:list"
CSRF_FAILURE_VIEW = "forms_app.views.csrf_failure"

# --- I18N, static ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing folder before collectstatic
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "media/"
# Uploads (web forms): each file is checked by content and against HEPTORA_FORM_MAX_UPLOAD_MB (or its field's
# own smaller limit); a bigger request is refused before it is read (forms_app.web). Files above 2.5 MB stream
# to a temporary file instead of memory; other request data stays capped at 2.5 MB, and one request may carry
# at most 20 files.
HEPTORA_FORM_MAX_UPLOAD_MB = env_int("HEPTORA_FORM_MAX_UPLOAD_MB", 10, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FILES = 20
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

# --- E-mail ---------------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    # No SMTP server configured: keep every message as a file so nothing is silently dropped.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "mail"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Heptora <heptora@localhost>")

# --- Logging --------------------------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery's "Received task" / "Task … succeeded" lines name a task id, not the execution; the engine
        # logs each status change with the execution id and the worker itself, so these two would only
        # double the worker's log (and its cost per run). Warnings and errors still come through.
        "celery.worker.strategy": {"level": "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"},
        "celery.app.trace": {"level": "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"},
    },
}

# --- Heptora --------------------------------------------------------------------------------------------
# Execution engine timing; see docs/architecture.md ("Reliability").
HEPTORA_DEFAULT_TIMEOUT = env_int("HEPTORA_DEFAULT_TIMEOUT", 300, minimum=1)
HEPTORA_MAX_TIMEOUT = env_int("HEPTORA_MAX_TIMEOUT", 24 * 3600, minimum=1)
HEPTORA_TIMEOUT_GRACE = env_int("HEPTORA_TIMEOUT_GRACE", 30, minimum=1)
HEPTORA_HEARTBEAT_SECONDS = env_float("HEPTORA_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
HEPTORA_STALE_AFTER_SECONDS = env_float("HEPTORA_STALE_AFTER_SECONDS", 60.0, minimum=0.5)
HEPTORA_RECOVERY_INTERVAL = env_float("HEPTORA_RECOVERY_INTERVAL", 30.0, minimum=0.5)
HEPTORA_REPUBLISH_AFTER_SECONDS = env_float("HEPTORA_REPUBLISH_AFTER_SECONDS", 600.0, minimum=1)
HEPTORA_MAX_ATTEMPTS = env_int("HEPTORA_MAX_ATTEMPTS", 3, minimum=1)
HEPTORA_API_RATE_LIMIT = env_int("HEPTORA_API_RATE_LIMIT", 100, minimum=1)  # per caller per minute
HEPTORA_MAX_INLINE_FILE_BYTES = env_int("HEPTORA_MAX_INLINE_FILE_BYTES", 1024 * 1024, minimum=1)
HEPTORA_API_BATCH_MAX = env_int("HEPTORA_API_BATCH_MAX", 500, minimum=1)
# The API call log is written in batches (api_app/calls.py): this many rows, or rows this old.
HEPTORA_API_CALL_LOG_BATCH = env_int("HEPTORA_API_CALL_LOG_BATCH", 50, minimum=1)
HEPTORA_API_CALL_LOG_FLUSH_SECONDS = env_float("HEPTORA_API_CALL_LOG_FLUSH_SECONDS", 1.0, minimum=0.05)
# The start's two statements are prepared once per connection (heptora/db/postgresql); off for a pooler in
# transaction mode that cannot keep prepared statements (and by default when DATABASES disables server-side
# cursors, which is what a settings file written for such a pooler does).
HEPTORA_DB_PREPARED_STATEMENTS = env_bool(
    "HEPTORA_DB_PREPARED_STATEMENTS", not DATABASES["default"].get("DISABLE_SERVER_SIDE_CURSORS", False))
if HEPTORA_STALE_AFTER_SECONDS < 3 * HEPTORA_HEARTBEAT_SECONDS:
    # Otherwise a live execution between two heartbeats looks dead and is started a second time.
    raise ImproperlyConfigured(
        f"HEPTORA_STALE_AFTER_SECONDS ({HEPTORA_STALE_AFTER_SECONDS}) must be at least three times "
        f"HEPTORA_HEARTBEAT_SECONDS ({HEPTORA_HEARTBEAT_SECONDS})."
    )
# Chat (docs/chat.md): a pending request (questions or confirmation) is dropped after this many seconds of
# silence; progress updates are pushed at most every HEPTORA_CHAT_PROGRESS_INTERVAL seconds.
HEPTORA_CHAT_CONFIRM_TIMEOUT = env_int("HEPTORA_CHAT_CONFIRM_TIMEOUT", 300, minimum=1)
HEPTORA_CHAT_PROGRESS_INTERVAL = env_float("HEPTORA_CHAT_PROGRESS_INTERVAL", 30.0, minimum=0)
HEPTORA_CHAT_ALWAYS_CONFIRM = env_bool("HEPTORA_CHAT_ALWAYS_CONFIRM", True)  # False: only critical processes
HEPTORA_CHAT_MATCH_THRESHOLD = env_float("HEPTORA_CHAT_MATCH_THRESHOLD", 0.72, minimum=0)
HEPTORA_CHAT_LINK_CODE_MINUTES = env_int("HEPTORA_CHAT_LINK_CODE_MINUTES", 10, minimum=1)
# Webhooks (docs/webhooks.md). The retry schedule is the seconds before each retry (the product's policy:
# 5 retries after 1, 2, 4, 8 and 16 s); the backoff scale multiplies it and Retry-After (tests use 0.05).
HEPTORA_WEBHOOK_RETRY_SCHEDULE = [env_float_item("HEPTORA_WEBHOOK_RETRY_SCHEDULE", item)
                                  for item in env_list("HEPTORA_WEBHOOK_RETRY_SCHEDULE", ["1", "2", "4", "8", "16"])]
HEPTORA_WEBHOOK_BACKOFF_SCALE = env_float("HEPTORA_WEBHOOK_BACKOFF_SCALE", 1.0, minimum=0.001)
HEPTORA_WEBHOOK_RETRY_AFTER_MAX = env_float("HEPTORA_WEBHOOK_RETRY_AFTER_MAX", 600.0, minimum=0)
HEPTORA_WEBHOOK_CONNECT_TIMEOUT = env_float("HEPTORA_WEBHOOK_CONNECT_TIMEOUT", 5.0, minimum=0.01)
HEPTORA_WEBHOOK_READ_TIMEOUT = env_float("HEPTORA_WEBHOOK_READ_TIMEOUT", 15.0, minimum=0.01)
HEPTORA_WEBHOOK_RESPONSE_EXCERPT = env_int("HEPTORA_WEBHOOK_RESPONSE_EXCERPT", 2048, minimum=0)
HEPTORA_WEBHOOK_DISABLE_AFTER_FAILURES = env_int("HEPTORA_WEBHOOK_DISABLE_AFTER_FAILURES", 20, minimum=1)
HEPTORA_WEBHOOK_SECRET_GRACE_HOURS = env_float("HEPTORA_WEBHOOK_SECRET_GRACE_HOURS", 24.0, minimum=0)
HEPTORA_WEBHOOK_REQUEUE_AFTER_SECONDS = env_float("HEPTORA_WEBHOOK_REQUEUE_AFTER_SECONDS", 60.0, minimum=0.1)
HEPTORA_WEBHOOK_REQUEUE_INTERVAL = env_float("HEPTORA_WEBHOOK_REQUEUE_INTERVAL", 30.0, minimum=0.5)
HEPTORA_WEBHOOK_ALLOWLIST = env_list("HEPTORA_WEBHOOK_ALLOWLIST", [])  # hosts and CIDRs the SSRF guard lets through
HEPTORA_WEBHOOK_REQUIRE_HTTPS = env_bool("HEPTORA_WEBHOOK_REQUIRE_HTTPS", not DEBUG)
HEPTORA_WEBHOOK_CA_BUNDLE = env_str("HEPTORA_WEBHOOK_CA_BUNDLE")  # empty: certifi's Mozilla bundle
HEPTORA_DEMO_PASSWORD = env_str("HEPTORA_DEMO_PASSWORD", "heptora-demo")
HEPTORA_DEMO_STEP_DELAY = env_float("HEPTORA_DEMO_STEP_DELAY", 0.4, minimum=0)
# Where people reach this server: links in e-mails (approval decision pages) start with it.
HEPTORA_BASE_URL = env_str("HEPTORA_BASE_URL", "http://127.0.0.1:8000")
# Approvals: defaults for a process without its own policy (a form marked "requires approval").
HEPTORA_DEFAULT_APPROVER_GROUP = env_str("HEPTORA_DEFAULT_APPROVER_GROUP", "Managers")
HEPTORA_APPROVAL_TIMEOUT = env_int("HEPTORA_APPROVAL_TIMEOUT", 4 * 3600, minimum=60)
HEPTORA_APPROVAL_REMINDER_BEFORE = env_int("HEPTORA_APPROVAL_REMINDER_BEFORE", 1800, minimum=0)
HEPTORA_APPROVAL_LINK_MAX_AGE = env_int("HEPTORA_APPROVAL_LINK_MAX_AGE", 7 * 24 * 3600, minimum=60)
HEPTORA_APPROVAL_CHECK_INTERVAL = env_float("HEPTORA_APPROVAL_CHECK_INTERVAL", 60.0, minimum=0.5)
# Benchmark only (bench/run.sh): mounts the bench endpoints at /bench/. Never set it in production.
HEPTORA_BENCH_ENDPOINTS = env_bool("HEPTORA_BENCH_ENDPOINTS", False)

CELERY_BEAT_SCHEDULE = {
    "heptora-recover-stalled-executions": {
        "task": "executions.recover_stalled",
        "schedule": HEPTORA_RECOVERY_INTERVAL,
    },
    "heptora-resend-pending-notifications": {"task": "notifications.resend_pending", "schedule": 60.0},
    "heptora-expire-chat-requests": {"task": "chat_app.expire_requests", "schedule": 30.0},
    "heptora-redeliver-chat-messages": {"task": "chat_app.redeliver_due", "schedule": 60.0},
    "heptora-expire-approvals": {"task": "approvals.expire_due", "schedule": HEPTORA_APPROVAL_CHECK_INTERVAL},
    "heptora-requeue-webhook-deliveries": {
        "task": "webhooks.requeue_due",
        "schedule": HEPTORA_WEBHOOK_REQUEUE_INTERVAL,
    },
    "heptora-purge-idempotency-records": {"task": "api_app.purge_idempotency_records", "schedule": 3600.0},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api_app.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api_app.parsers.SafeJSONParser"],
    "EXCEPTION_HANDLER": "api_app.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
OAUTH2_PROVIDER = {
    "SCOPES": {
        "process:execute": "Start processes and control their executions",
        "process:read": "Read processes and executions",
    },
    "DEFAULT_SCOPES": ["process:read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("HEPTORA_OAUTH_TOKEN_SECONDS", 3600, minimum=60),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Heptora API",
    "DESCRIPTION": (BASE_DIR / "docs" / "api-intro.md").read_text() if (BASE_DIR / "docs" / "api-intro.md").exists()
    else "Start automated business processes and follow their executions.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "tryItOutEnabled": True},
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "executions.models.ExecutionStatus",
        "DeliveryStatusEnum": "webhooks.models.DeliveryStatus",
    },
    "SCHEMA_PATH_PREFIX": "/api/v1",  # tags each operation by its resource: processes, executions, me
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api_app.schema.per_process_execute_paths",
        "api_app.schema.document_common_errors",
    ],
}
