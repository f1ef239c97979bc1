"""MesoClinic settings: one module, driven by the environment.

Every knob is an environment variable (see the README's configuration table).
Defaults are safe: DEBUG is off unless ``make run`` turns it on, cookies are
secure and HSTS is on whenever DEBUG is off.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils.translation import gettext_lazy as _
from environs import Env

from mesoclinic.embedded import embedded_database_settings, local_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = Env()
env.read_env(str(BASE_DIR / ".env"), recurse=False)

VAR_DIR = Path(env.str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", False)
# Without SECRET_KEY, a random key is generated once and kept (mode 0600) under var/, so
# a single machine works out of the box and no key is ever a published default. Several
# web containers must share one key: the compose file requires SECRET_KEY.
SECRET_KEY = env.str("SECRET_KEY", "") or local_secret_key(VAR_DIR)
ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env.str("SITE_URL", "http://localhost:8000").rstrip("/")
CLINIC_NAME = env.str("CLINIC_NAME", "MesoClinic")

INSTALLED_APPS = [
    "mesoclinic",
    "patients",
    "treatments",
    "aftercare",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "pgtrigger",
    "pghistory",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "csp",
    "phonenumber_field",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before everything that queries (sessions, auth, axes, history): a database that is
    # away answers a 503 page, not a traceback (docs/durability.md).
    "mesoclinic.db_unavailable.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "mesoclinic.middleware.SessionTimeoutMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "mesoclinic.middleware.MfaRequiredMiddleware",
    "mesoclinic.middleware.NoStoreMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    # Last, so that it sees a lockout flagged by the authentication backend.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mesoclinic.urls"
WSGI_APPLICATION = "mesoclinic.wsgi.application"
AUTH_USER_MODEL = "mesoclinic.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "mesoclinic.context_processors.clinic",
            ],
        },
    },
]


# --- Database: DATABASE_URL, or the embedded PostgreSQL under var/ -----------------


def database_settings(database_url: str, var_dir: Path) -> dict[str, Any]:
    """The default database entry: the URL when given, else the embedded server."""
    import dj_database_url

    if database_url:
        config: dict[str, Any] = dict(dj_database_url.parse(database_url))
    else:
        config = embedded_database_settings(var_dir / "pgdata")
    if not config["ENGINE"].endswith("postgresql"):
        raise ValueError("MesoClinic runs on PostgreSQL only; DATABASE_URL must be postgres://…")
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", 60)
    # A SELECT 1 before a request reuses a connection: after a database restart the first
    # request then succeeds instead of failing. Costs one round trip per request.
    config["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", True)
    config.setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", "") or None
    return config


DATABASE_URL = env.str("DATABASE_URL", "")
DATABASES = {"default": database_settings(DATABASE_URL, VAR_DIR)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, lockouts across processes) ---------------------------------

REDIS_URL = env.str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    # Opt-in: sessions read from Redis, written through to PostgreSQL (B0 in
    # docs/benchmarks.md: one query fewer per signed-in request; a Redis restart only costs
    # cache misses). Off by default so that pinned query counts hold everywhere.
    if env.bool("SESSION_CACHE", False):
        SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Authentication: allauth (email + password, TOTP), axes lockout ---------------------

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
ACCOUNT_ADAPTER = "mesoclinic.adapters.StaffAccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{CLINIC_NAME}] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# Per-IP throttling only: a per-account limit would let anyone lock a practitioner
# out from everywhere. The per-account-and-IP lockout is axes' job.
ACCOUNT_RATE_LIMITS = {"login_failed": "30/m/ip", "reset_password": "20/m/ip,5/m/key"}  # rate limits, not a password  # nosec B105
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = CLINIC_NAME
# Staff must enrol TOTP before anything else when on (the default in production).
MFA_REQUIRED = env.bool("MFA_REQUIRED", not DEBUG)

AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "mesoclinic.access.login_attempt_username"
AXES_CLIENT_IP_CALLABLE = "mesoclinic.audit.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "account/lockout.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Sessions: idle timeout plus an absolute cap ---------------------------------------

SESSION_IDLE_TIMEOUT = timedelta(minutes=env.int("SESSION_IDLE_MINUTES", 15))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env.int("SESSION_MAX_HOURS", 12))
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Security headers ----------------------------------------------------------------------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
BEHIND_PROXY = env.bool("BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
# Behind one reverse proxy that sets X-Forwarded-For, the client is its last entry:
# rate limits, lockouts and the audit trail must see the client, not the proxy.
ALLAUTH_TRUSTED_PROXY_COUNT = 1 if BEHIND_PROXY else 0
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS: list[str] = []

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# --- Internationalisation ----------------------------------------------------------------

LANGUAGE_CODE = env.str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

# --- Static and private files --------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Never under a public URL: files leave only through access-checked views.
PRIVATE_MEDIA_ROOT = Path(env.str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "private": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_MEDIA_ROOT), "base_url": None},
    },
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Email: SMTP when configured, otherwise files under var/mail/ -------------------------

EMAIL_HOST = env.str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env.int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
    EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 20)
else:
    EMAIL_BACKEND = "mesoclinic.mail.FolderEmailBackend"
EMAIL_FOLDER = Path(env.str("EMAIL_FOLDER", str(VAR_DIR / "mail")))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "MesoClinic <no-reply@mesoclinic.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery --------------------------------------------------------------------------------

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    _queue_dir = Path(env.str("CELERY_FILESYSTEM_DIR", str(VAR_DIR / "celery")))
    CELERY_BROKER_URL = "filesystem://"
    # kombu expects the folders to exist; every process (web, worker, beat) may be first.
    for _sub in ("queue", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "control_folder": str(_queue_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", "mesoclinic")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "mesoclinic.tasks.heartbeat_record", "schedule": 30.0},
    "outbox-sweep": {"task": "aftercare.tasks.message_sweep_due", "schedule": 60.0},
    "adverse-followups": {"task": "aftercare.tasks.adverse_followups_queue", "schedule": 3600.0},
}

# Outbox (docs/outbox.md): rows per send task (one SMTP connection each), rows handed over
# per sweep, how long a row may stay "sending" before the sweeper decides its worker died,
# and how long a row handed to a queued task waits before being handed again.
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", 50)
OUTBOX_SWEEP_LIMIT = env.int("OUTBOX_SWEEP_LIMIT", 5000)
OUTBOX_SENDING_LEASE_SECONDS = env.int("OUTBOX_SENDING_LEASE_SECONDS", 300)
OUTBOX_QUEUED_LEASE_SECONDS = env.int("OUTBOX_QUEUED_LEASE_SECONDS", 120)

# Patient messages: the appointment reminder goes this many hours before the start.
REMINDER_HOURS_BEFORE = env.int("REMINDER_HOURS_BEFORE", 24)

# --- Forms, logging ----------------------------------------------------------

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "ERROR"},
        "fontTools": {"level": "WARNING"},
        "pgserver": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# The Django admin is for the technical operator; clinic work happens in the app.
ADMIN_URL = env.str("ADMIN_URL", "admin/")
PHONENUMBER_DEFAULT_REGION = env.str("PHONE_REGION", "FR")
PHONENUMBER_DB_FORMAT = "E164"
