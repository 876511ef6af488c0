"""Slipway's settings: read from the environment only (see .env.example).

Local runs also read `.local/services.env`, written by `devtools/services.py`, for the
URLs of the PostgreSQL and Redis it started; real environment variables win.
"""

from pathlib import Path

import environ
import ldap
from django.core.exceptions import ImproperlyConfigured
from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

from portal.core.logs import logging_config
from portal.core.queues import Task

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
for env_file in (BASE_DIR / ".local" / "services.env", BASE_DIR / ".env"):
    if env_file.exists():
        env.read_env(str(env_file), overwrite=False)

# Public development secrets: used only with SLIPWAY_DEV=1 (`make run`, `make test` and
# this checkout's .local/services.env set it); anywhere else Slipway refuses to start
# without real ones, so a forgotten variable never means a public key in use.
DEV_SECRET_KEY = "dev-insecure-slipway-secret-key-change-me-0123456789abcdefghijklmnop"
DEV_ENCRYPTION_KEY = "bG9jYWwtZGV2LW9ubHktc2xpcHdheS1lbmNyeXB0aW8="
DEV_AUDIT_KEY = "dev-insecure-slipway-audit-key-0123456789abcdef"

DEV = env.bool("SLIPWAY_DEV", default=False)
DEBUG = env.bool("DEBUG", default=False)
PRODUCTION = env.bool("SLIPWAY_PRODUCTION", default=False)
# An empty variable counts as unset.
SECRET_KEY = env.str("SECRET_KEY", default="") or (DEV_SECRET_KEY if DEV else "")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SLIPWAY_ENCRYPTION_KEYS = env.list("SLIPWAY_ENCRYPTION_KEYS", default=[]) or (
    [DEV_ENCRYPTION_KEY] if DEV else []
)
# HMAC keys of the audit chain, newest first (rotate by putting a new one in front).
SLIPWAY_AUDIT_KEYS = env.list("SLIPWAY_AUDIT_KEYS", default=[]) or ([DEV_AUDIT_KEY] if DEV else [])


def _refuse(message: str) -> None:
    raise ImproperlyConfigured(
        f"{message} (Only SLIPWAY_DEV=1, for local development, allows the public "
        "development values; see .env.example.)"
    )


if not DEV or PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        _refuse("Set SECRET_KEY to a random value of 50+ characters.")
    if not SLIPWAY_ENCRYPTION_KEYS or DEV_ENCRYPTION_KEY in SLIPWAY_ENCRYPTION_KEYS:
        _refuse("Set SLIPWAY_ENCRYPTION_KEYS to your own Fernet key(s).")
    if not SLIPWAY_AUDIT_KEYS or DEV_AUDIT_KEY in SLIPWAY_AUDIT_KEYS:
        _refuse("Set SLIPWAY_AUDIT_KEYS to your own random key(s) of 32+ characters.")
    if any(len(key) < 32 for key in SLIPWAY_AUDIT_KEYS):
        _refuse("Each of SLIPWAY_AUDIT_KEYS must be 32+ characters.")
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when SLIPWAY_PRODUCTION is on.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_htmx",
    "axes",
    "csp",
    "portal",
    "clusters",
    "releases",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.ops.middleware.RequestIdMiddleware",
    "portal.ops.middleware.RequestLogMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "releases.context_processors.approvals",
                "portal.web.context_processors.live",
            ],
        },
    },
]

# PostgreSQL only: constraints and the audit trigger depend on it.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgresql://slipway@127.0.0.1:5432/slipway")
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL.")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
# A pool of connections per web process (psycopg_pool): under ASGI each request in flight
# runs in a thread of its own with a connection of its own, so a burst (200 releases
# asked at once, Jenkins notifying of each build) opened more than PostgreSQL's
# max_connections and answered 500. With the pool a request waits its turn for one of
# DATABASE_POOL_MAX_SIZE connections (up to DATABASE_POOL_TIMEOUT seconds, then 503), and
# none is opened and authenticated per request. Off (0) by default: set for the web
# process only (Procfile, Dockerfile, compose, chart), never for a prefork worker, whose
# children would inherit the parent's pool across fork.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
RUNTIME_DATABASE_USER = DATABASES["default"]["USER"]
# The owner role that runs migrations (the runtime role above owns nothing); empty when
# one role does both (not for production: see docs/operations.md).
MIGRATION_DATABASE = (
    env.db_url("MIGRATION_DATABASE_URL") if env.str("MIGRATION_DATABASE_URL", default="") else None
)
# Two test runs at once (a developer's, CI's) each need their own test database.
DATABASES["default"]["TEST"] = {"NAME": env.str("SLIPWAY_TEST_DATABASE", default="test_slipway")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Short-lived data (promotion previews): Redis, shared by web and workers.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("SLIPWAY_CACHE_PREFIX", default="slipway"),
    }
}


def _redis_keywords(url: str) -> dict:
    """redis.Redis(**these) for `url`: how django-eventstream takes its connection."""
    from redis.connection import SSLConnection, parse_url

    keywords = parse_url(url)
    if keywords.pop("connection_class", None) is SSLConnection:
        keywords["ssl"] = True
    return keywords


# Pages that update themselves (server-sent events, portal/web/live.py): events go
# through Redis to every web process, and are kept there a day so a reconnect resumes.
EVENTSTREAM_REDIS = _redis_keywords(REDIS_URL)
EVENTSTREAM_STORAGE_CLASS = "django_eventstream.storage.RedisStorage"
EVENTSTREAM_STORAGE_CONNECTION = EVENTSTREAM_REDIS
EVENTSTREAM_CHANNELMANAGER_CLASS = "portal.web.live.LiveChannels"
# How often a page asks again when its event stream is blocked (a proxy that buffers).
SLIPWAY_LIVE_FALLBACK_SECONDS = env.int("SLIPWAY_LIVE_FALLBACK_SECONDS", default=15)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-in: LDAP when SLIPWAY_LDAP_URI is set (users and team roles from the directory),
# and local accounts always (break-glass admins). django-axes locks a username at an
# address out after repeated failures.
SLIPWAY_LDAP_URI = env.str("SLIPWAY_LDAP_URI", default="")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    *(["portal.access.ldap.SlipwayLDAPBackend"] if SLIPWAY_LDAP_URI else []),
    # Local (break-glass) accounts only; LDAP accounts sign in with the directory.
    "portal.access.ldap.LocalBackend",
]
AUTH_LDAP_SERVER_URI = SLIPWAY_LDAP_URI
AUTH_LDAP_BIND_DN = env.str("SLIPWAY_LDAP_BIND_DN", default="")
AUTH_LDAP_BIND_PASSWORD = env.str("SLIPWAY_LDAP_BIND_PASSWORD", default="")
AUTH_LDAP_USER_DN_TEMPLATE = env.str(
    "SLIPWAY_LDAP_USER_DN_TEMPLATE", default="uid=%(user)s,ou=people,dc=example,dc=com"
)
AUTH_LDAP_START_TLS = env.bool("SLIPWAY_LDAP_START_TLS", default=False)
AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
AUTH_LDAP_ALWAYS_UPDATE_USER = True
AUTH_LDAP_DENY_GROUP = env.str("SLIPWAY_LDAP_DENY_GROUP", default="") or None
AUTH_LDAP_REQUIRE_GROUP = env.str("SLIPWAY_LDAP_REQUIRE_GROUP", default="") or None
SLIPWAY_LDAP_GROUP_BASE = env.str("SLIPWAY_LDAP_GROUP_BASE", default="ou=groups,dc=example,dc=com")
AUTH_LDAP_CONNECTION_OPTIONS = {}
AUTH_LDAP_CACHE_TIMEOUT = 0
# LDAP groups become Slipway groups by name (cn) at each sign-in, so an approval rule can
# name a directory group (releases/policy_models.py).
AUTH_LDAP_MIRROR_GROUPS = True
# Offboarding: how often the directory is read again for LDAP accounts with a live token
# or session (every LDAP account is read at least daily).
SLIPWAY_LDAP_SYNC_SECONDS = env.float("SLIPWAY_LDAP_SYNC_SECONDS", default=300.0)
if SLIPWAY_LDAP_URI:
    AUTH_LDAP_GROUP_SEARCH = LDAPSearch(
        SLIPWAY_LDAP_GROUP_BASE, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"
    )
    AUTH_LDAP_GROUP_TYPE = GroupOfNamesType()
    AUTH_LDAP_CONNECTION_OPTIONS = {
        ldap.OPT_NETWORK_TIMEOUT: 5,
        ldap.OPT_TIMEOUT: 10,
        ldap.OPT_REFERRALS: 0,
    }
AXES_ENABLED = env.bool("SLIPWAY_SIGNIN_LOCKOUT", default=True)
AXES_FAILURE_LIMIT = env.int("SLIPWAY_SIGNIN_FAILURES", default=5)
AXES_COOLOFF_TIME = env.float("SLIPWAY_SIGNIN_LOCKOUT_MINUTES", default=15.0) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client's own address, by the same trusted-proxy rule as audit events: behind the
# ingress every client would otherwise share its few addresses, and five wrong passwords
# from anywhere would lock the admin out everywhere.
AXES_CLIENT_IP_CALLABLE = "portal.core.addresses.client_ip"
# Sign-in attempts per client address (django-ratelimit), whatever the usernames tried.
SLIPWAY_SIGNIN_RATE = env.str("SLIPWAY_SIGNIN_RATE", default="30/m")
RATELIMIT_VIEW = "portal.web.views.rate_limited"
# Gate checks and manifest previews (they call Prometheus or run helm) per user.
SLIPWAY_CHECK_RATE = env.str("SLIPWAY_CHECK_RATE", default="10/m")
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".local" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Production hardening: `manage.py check --deploy` is clean with SLIPWAY_PRODUCTION=1.
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy on every response (django-csp): scripts, styles and fetches from
# Slipway itself only; no inline script or style anywhere (pages, htmx, the API docs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.access.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.web.api_defaults.TokenScopes",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["portal.web.api_defaults.CallerRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "portal.web.schema.SlipwaySchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.web.api_defaults.SmallPage",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": ["portal.web.api_defaults.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "portal.web.api_defaults.ProblemJSONRenderer",
    ],
    "EXCEPTION_HANDLER": "portal.web.drf.problem_exception_handler",
}
# API tokens expire after this many days unless issued otherwise, and never live longer
# than SLIPWAY_TOKEN_MAX_DAYS (older tokens stop working when it is lowered).
SLIPWAY_TOKEN_DAYS = env.int("SLIPWAY_TOKEN_DAYS", default=90)
SLIPWAY_TOKEN_MAX_DAYS = env.int("SLIPWAY_TOKEN_MAX_DAYS", default=180)
# Requests per token (or per signed-in user) to the API; more answer 429 with Retry-After.
SLIPWAY_API_RATE = env.str("SLIPWAY_API_RATE", default="1200/min")
# Proxies (CIDRs) whose X-Forwarded-For names the client (audit events record it); from
# any other address, the connection's own address is the client's.
SLIPWAY_TRUSTED_PROXIES = env.list("SLIPWAY_TRUSTED_PROXIES", default=[])
# /metrics: a bearer token, or these client networks (not public).
SLIPWAY_METRICS_TOKEN = env.str("SLIPWAY_METRICS_TOKEN", default="")
# In production no network is trusted unless configured on purpose: behind a same-host
# proxy every request would come from loopback.
SLIPWAY_METRICS_ALLOW = env.list(
    "SLIPWAY_METRICS_ALLOW", default=[] if PRODUCTION else ["127.0.0.1/32", "::1/128"]
)
SLIPWAY_AUDIT_ANCHOR_SECONDS = env.float("SLIPWAY_AUDIT_ANCHOR_SECONDS", default=300.0)
# The largest JSON body the API reads (bigger: 413).
SLIPWAY_API_MAX_BODY_BYTES = env.int("SLIPWAY_API_MAX_BODY_BYTES", default=1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Slipway API",
    "VERSION": "0.1.0",
    # Request bodies get their own components, so a field that may not be blank says so
    # (minLength: 1): the schema states what the server refuses.
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.web.schema.state_refused_characters",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TrainStatusEnum": "releases.train_models.TrainStatus.choices",
        "TrainMemberStatusEnum": "releases.train_models.TrainMemberStatus.choices",
    },
}

# Celery: Redis broker, JSON only; every task declares its own queue and limits.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A lost broker (Redis restarting) is waited for, never a reason to exit.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Django's LOGGING (structured JSON) applies to the worker too.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = False
# The release engine's rhythm: how often to poll Jenkins/Kubernetes, when a silent run
# counts as dead and is resumed, and how hard to retry an unavailable Jenkins.
SLIPWAY_POLL_SECONDS = env.float("SLIPWAY_POLL_SECONDS", default=2.0)
# With build notifications on for a Jenkins server: polling is only the fallback for a lost
# notification (it costs time, never a release).
SLIPWAY_POLL_FALLBACK_SECONDS = env.float("SLIPWAY_POLL_FALLBACK_SECONDS", default=30.0)

# Namespaces no target may use, whatever a grant says (fnmatch patterns).
SLIPWAY_SYSTEM_NAMESPACES = env.list("SLIPWAY_SYSTEM_NAMESPACES", default=["kube-*", "default"])

# Where people open Slipway: the links in notifications.
SLIPWAY_BASE_URL = env.str("SLIPWAY_BASE_URL", default="http://127.0.0.1:8000")
# Insights: a succeeded Prod change followed by a rollback within this many hours failed.
SLIPWAY_INSIGHTS_ROLLBACK_HOURS = env.int("SLIPWAY_INSIGHTS_ROLLBACK_HOURS", default=24)
# Notifications: tries per channel and event, the first retry's delay (doubling after),
# and how long one try may take.
SLIPWAY_NOTIFY_ATTEMPTS = env.int("SLIPWAY_NOTIFY_ATTEMPTS", default=5)
SLIPWAY_NOTIFY_BACKOFF_SECONDS = env.float("SLIPWAY_NOTIFY_BACKOFF_SECONDS", default=10.0)
SLIPWAY_NOTIFY_TIMEOUT_SECONDS = env.float("SLIPWAY_NOTIFY_TIMEOUT_SECONDS", default=10.0)
SLIPWAY_NOTIFY_MAX_CHANNELS = env.int("SLIPWAY_NOTIFY_MAX_CHANNELS", default=10)
# Outbound HTTP (webhooks, chat robots, Prometheus, registries, Jenkins) goes only to
# public addresses, and to the host names, addresses or networks listed here (e.g.
# jenkins.internal, *.svc.cluster.local, 10.20.0.0/16). See portal/egress.py.
SLIPWAY_EGRESS_ALLOW = env.list("SLIPWAY_EGRESS_ALLOW", default=[])
SLIPWAY_STALE_AFTER_SECONDS = env.float("SLIPWAY_STALE_AFTER_SECONDS", default=120.0)
SLIPWAY_RESUME_EVERY_SECONDS = env.float("SLIPWAY_RESUME_EVERY_SECONDS", default=30.0)
SLIPWAY_JENKINS_MAX_RETRIES = env.int("SLIPWAY_JENKINS_MAX_RETRIES", default=8)
SLIPWAY_RETRY_BASE_SECONDS = env.float("SLIPWAY_RETRY_BASE_SECONDS", default=2.0)
SLIPWAY_WATCH_BUDGET_SECONDS = env.float("SLIPWAY_WATCH_BUDGET_SECONDS", default=20.0)
SLIPWAY_HELM_STUCK_SECONDS = env.float("SLIPWAY_HELM_STUCK_SECONDS", default=600.0)
SLIPWAY_CLUSTER_MAX_RETRIES = env.int("SLIPWAY_CLUSTER_MAX_RETRIES", default=5)
# A run lost this many times (worker killed, lease run out) is failed, not resumed again.
SLIPWAY_MAX_RESUMES = env.int("SLIPWAY_MAX_RESUMES", default=5)
# The helm binary (empty: `helm` on PATH) and how long one helm run may take.
SLIPWAY_HELM = env.str("SLIPWAY_HELM", default="")
SLIPWAY_HELM_TIMEOUT_SECONDS = env.float("SLIPWAY_HELM_TIMEOUT_SECONDS", default=300.0)
# helm's Go garbage collector runs only when its memory nears this (GOGC=off, GOMEMLIMIT):
# a helm run lives a second and allocates in bursts, and collecting along the way was
# 15 % of its CPU. Empty: Go's defaults (GOGC=100).
SLIPWAY_HELM_MEMORY_LIMIT = env.str("SLIPWAY_HELM_MEMORY_LIMIT", default="512MiB")
SLIPWAY_DRIFT_CHECK_SECONDS = env.float("SLIPWAY_DRIFT_CHECK_SECONDS", default=300.0)
# An Idempotency-Key is remembered this long.
SLIPWAY_IDEMPOTENCY_HOURS = env.int("SLIPWAY_IDEMPOTENCY_HOURS", default=24)
# Services declared in their repositories are read again this often (and on a push).
SLIPWAY_CATALOG_SYNC_SECONDS = env.float("SLIPWAY_CATALOG_SYNC_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE = {
    "resume-stale-releases": {
        "task": Task.RESUME_STALE,
        "schedule": SLIPWAY_RESUME_EVERY_SECONDS,
    },
    "check-drift": {"task": Task.CHECK_DRIFT_ALL, "schedule": SLIPWAY_DRIFT_CHECK_SECONDS},
    "forget-idempotency-keys": {"task": Task.FORGET_IDEMPOTENCY_KEYS, "schedule": 3600.0},
    "verify-audit": {"task": Task.VERIFY_AUDIT, "schedule": 24 * 3600.0},
    "audit-anchor": {"task": Task.AUDIT_ANCHOR, "schedule": SLIPWAY_AUDIT_ANCHOR_SECONDS},
    "catalog-sync": {"task": Task.CATALOG_SYNC_ALL, "schedule": SLIPWAY_CATALOG_SYNC_SECONDS},
}
if SLIPWAY_LDAP_URI:
    CELERY_BEAT_SCHEDULE["ldap-offboarding"] = {
        "task": Task.LDAP_OFFBOARDING,
        "schedule": SLIPWAY_LDAP_SYNC_SECONDS,
    }

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# json (one JSON object a line, for ELK and friends) or console (for a person).
SLIPWAY_LOG_FORMAT = env.str("SLIPWAY_LOG_FORMAT", default="json")
LOGGING = logging_config(LOG_LEVEL, SLIPWAY_LOG_FORMAT)
