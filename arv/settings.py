"""ARV settings. Everything an operator changes comes from the environment (or a .env file)."""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

from arv.db.config import (
    ConfigurationError,
    database_from_env,
    env_bool,
    env_choice,
    env_number,
    pool_settings_from_env,
)
from arv.logs import LOG_FORMATS, LOG_LEVELS, logging_config
from arv.web.checks import DEVELOPMENT_SECRET_KEY

BASE_DIR = Path(__file__).resolve().parent.parent
# The operator's .env (bin/serve writes one); ARV_ENV_FILE names another, or none
# (the tests set os.devnull, so nothing an operator set up leaks into them).
load_dotenv(os.environ.get("ARV_ENV_FILE") or BASE_DIR / ".env")

try:
    DEBUG = env_bool("DJANGO_DEBUG", False)
    DATABASE_POOL = pool_settings_from_env()
    DATABASES = {"default": database_from_env(BASE_DIR / "db.sqlite3", DATABASE_POOL)}
    # Server processes on this database, for the connection budget check (0: uvicorn's --workers).
    SERVER_PROCESSES = env_number("ARV_SERVER_PROCESSES", 0)
    AXES_FAILURE_LIMIT = env_number("ARV_LOGIN_FAILURE_LIMIT", 5, minimum=1)
    AXES_COOLOFF_TIME = timedelta(seconds=env_number("ARV_LOGIN_COOLOFF_SECONDS", 15 * 60, minimum=1))
    # The wait before a login after one failure, doubled after each further one (arv.auth.slowdown).
    LOGIN_SLOWDOWN_SECONDS = env_number("ARV_LOGIN_SLOWDOWN_SECONDS", 0.25, integer=False)
    DATA_UPLOAD_MAX_MEMORY_SIZE = env_number("ARV_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
    LOGGING = logging_config(
        log_format=env_choice("ARV_LOG_FORMAT", "text", tuple(LOG_FORMATS)),
        level=env_choice("ARV_LOG_LEVEL", "INFO", LOG_LEVELS),
        sql_echo=DATABASE_POOL.echo,
        access_log=env_bool("ARV_ACCESS_LOG", False),
    )
except ConfigurationError as exc:
    raise ImproperlyConfigured(str(exc)) from None
LOGGING_CONFIG = "arv.logs.configure"  # honours uvicorn's --no-access-log

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (any long random string) or run with DJANGO_DEBUG=true."
        )
    SECRET_KEY = DEVELOPMENT_SECRET_KEY  # check --deploy warns (arv.W202)

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "axes",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "arv.db",
    "arv.metrics",
    "arv.auth",
    "storage",
    "companies",
]

# The admin's stack: sync, run on a database worker in one trip (arv.pipeline.SiteHandler).
# The API has its own async-only stack (API_MIDDLEWARE): no thread hop at all.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes' lockout answer (last, as axes asks), committed although it is a 429.
    "arv.auth.middleware.keep_lockout_writes",
    "axes.middleware.AxesMiddleware",
]
API_MIDDLEWARE = [
    "arv.web.middleware.ApiSecurityMiddleware",
    "arv.web.middleware.JsonApiMiddleware",
]

# The product's URLs only: the tests' own views are mounted by testing.settings, never from here.
ROOT_URLCONF = "arv.urls"
ASGI_APPLICATION = "arv.asgi.application"
WSGI_APPLICATION = None

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

AUTHENTICATION_BACKENDS = [
    # Refuses a locked-out login before the password is even hashed (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin login throttling (README, "Admin logins"). Each failure for a username, or from an
# address, doubles the wait before its next login (ARV_LOGIN_SLOWDOWN_SECONDS, arv.auth.slowdown,
# counted from django-axes' records); after ARV_LOGIN_FAILURE_LIMIT failures of one username
# from one address, django-axes refuses that pair (429) until ARV_LOGIN_COOLOFF_SECONDS have
# passed since the failure that locked it. Only the pair is locked: an outsider who knows an
# admin's username can slow its logins down (at most arv.auth.slowdown.MAX_DELAY_SECONDS) but
# never lock it out. Failures during a lockout are neither recorded nor extend it. Attempts for
# one username are evaluated one at a time (arv.auth.handlers), so a burst gets no more than the
# limit. A successful login resets its pair's count. The address is REMOTE_ADDR, which uvicorn
# takes from X-Forwarded-For only for a proxy it trusts (--forwarded-allow-ips /
# FORWARDED_ALLOW_IPS, default 127.0.0.1).
AXES_HANDLER = "arv.auth.handlers.SerializedAxesHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Static files are served by ServeStatic at the front of the pipeline (arv.pipeline):
# async, no database worker, and with DEBUG off. From collectstatic's output when it
# has run (hashed, compressed, cached forever); before that, from the apps themselves
# (arv.web.static).
STATIC_URL = "static/"
# Below the mount point (--root-path): Django adds the script prefix to STATIC_URL itself,
# on first use, which must be during a request (arv.pipeline reads neither at start-up).
SERVESTATIC_STATIC_PREFIX = "/" + STATIC_URL
STATIC_ROOT = Path(os.environ.get("ARV_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "arv.web.static.CollectedStaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Where the seeded "Local Storage" connection keeps files.
LOCAL_STORAGE_ROOT = Path(os.environ.get("ARV_LOCAL_STORAGE_ROOT", BASE_DIR / "var" / "storage"))
# Where local_disk connections may point (base_path resolves inside one of them).
LOCAL_STORAGE_ROOTS = [
    Path(root.strip()) for root in os.environ.get("ARV_LOCAL_STORAGE_ROOTS", "").split(",") if root.strip()
] or [LOCAL_STORAGE_ROOT]
if not all(root.is_absolute() for root in LOCAL_STORAGE_ROOTS):
    raise ImproperlyConfigured(f"ARV_LOCAL_STORAGE_ROOTS must name absolute paths: {LOCAL_STORAGE_ROOTS}")
# Storage connection checks: the whole check's deadline, how many run at once per process,
# the networks besides public ones a MinIO endpoint may be in, and where Yandex Disk's API is.
try:
    STORAGE_TEST_TIMEOUT = env_number("ARV_STORAGE_TEST_TIMEOUT", 10, minimum=0.1, integer=False)
    STORAGE_TEST_CONCURRENCY = env_number("ARV_STORAGE_TEST_CONCURRENCY", 4, minimum=1)
except ConfigurationError as exc:
    raise ImproperlyConfigured(str(exc)) from None
try:
    STORAGE_ALLOWED_NETWORKS = [
        ipaddress.ip_network(cidr.strip())
        for cidr in os.environ.get("ARV_STORAGE_ALLOWED_NETWORKS", "").split(",")
        if cidr.strip()
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        f"ARV_STORAGE_ALLOWED_NETWORKS: {exc} (comma-separated CIDRs, e.g. 10.0.0.0/8)"
    ) from None
YANDEX_DISK_API_URL = os.environ.get("ARV_YANDEX_DISK_API_URL", "https://cloud-api.yandex.net")

# Keys for storage credentials at rest (storage.credentials): the first encrypts, all decrypt;
# a key derived from SECRET_KEY always decrypts too, and encrypts when none is set.
CREDENTIALS_KEYS = [k.strip() for k in os.environ.get("ARV_CREDENTIALS_KEYS", "").split(",") if k.strip()]

# HTTPS deployment (see README, "Deploying"): all off unless asked for.
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_number("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# /metrics (arv.metrics): off unless set, then only for `Authorization: Bearer <this>`.
METRICS_TOKEN = os.environ.get("ARV_METRICS_TOKEN", "")
