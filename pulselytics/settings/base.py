"""Settings, read from the environment (see README "Configuration").

PULSELYTICS_ENV is `development` (default: plain HTTP, DEBUG only with DEBUG=1) or
`production`, which makes the entry points load pulselytics.settings.production (this
module plus: refuses to start without SECRET_KEY and ALLOWED_HOSTS; HTTPS only).
"""

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name, "")
    return [item.strip() for item in value.split(",") if item.strip()] or default


BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("PULSELYTICS_VAR_DIR", BASE_DIR / "var"))

PULSELYTICS_ENV = os.environ.get("PULSELYTICS_ENV", "development")
if PULSELYTICS_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("PULSELYTICS_ENV must be 'development' or 'production'")
if (PULSELYTICS_ENV == "production"
        and os.environ.get("DJANGO_SETTINGS_MODULE") == "pulselytics.settings.base"):
    # These settings alone would serve production over plain HTTP without its checks.
    raise ImproperlyConfigured(
        "PULSELYTICS_ENV=production with DJANGO_SETTINGS_MODULE=pulselytics.settings.base: "
        "use DJANGO_SETTINGS_MODULE=pulselytics.settings.production (or leave it unset)"
    )
# True only in pulselytics.settings.production.
IS_PRODUCTION = False

SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-never-use-in-production")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    # Django
    "core.apps.AdminConfig",  # django.contrib.admin with the project's site (two-factor login)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # third party
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "corsheaders",
    # local
    "core",
    "mlregistry",
    "training",
    "predictions",
    "monitoring",
    "demo",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Before every middleware that may answer (ApiGuard's 413, CommonMiddleware), as
    # django-cors-headers asks, so that those answers carry the CORS headers too.
    "corsheaders.middleware.CorsMiddleware",
    # Gzips the API's JSON answers: above every middleware that may answer or change one.
    "core.http_encoding.ApiGZipMiddleware",
    "core.middleware.ApiGuardMiddleware",
    # After ApiGuard's Content-Length check: chunked and gzipped request bodies made plain.
    "core.http_encoding.RequestBodyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # after authentication: marks the verified user
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: turns a lockout into a page
]

ROOT_URLCONF = "pulselytics.urls"
WSGI_APPLICATION = "pulselytics.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "pulselytics" / "templates"],  # project-wide admin overrides
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


def database_config(url: str) -> dict:
    # Health checks: a persistent connection is tested before a request reuses it, so one
    # that a database restart killed is replaced instead of failing the request.
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
                                   conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN,
        # which is what serialises the registry's transactions where SELECT FOR UPDATE is a no-op.
        config["OPTIONS"] = {
            "init_command": ("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                             "PRAGMA busy_timeout=10000"),
            "transaction_mode": "IMMEDIATE",
        }
    return config


if not os.environ.get("DATABASE_URL"):
    # The embedded default keeps its SQLite file under var/, made on first use.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": database_config(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'pulselytics.sqlite3'}"
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend",
                           "django.contrib.auth.backends.ModelBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))

# Artifacts go through Django's storage API only (mlregistry.artifacts); any backend works,
# e.g. ARTIFACT_STORAGE_BACKEND=storages.backends.s3.S3Storage with
# ARTIFACT_STORAGE_OPTIONS='{"bucket_name": "...", "endpoint_url": "..."}'.
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "artifacts": {
        "BACKEND": os.environ.get(
            "ARTIFACT_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": json.loads(
            os.environ.get("ARTIFACT_STORAGE_OPTIONS")
            or json.dumps({"location": str(VAR_DIR / "artifacts")})
        ),
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Celery: the embedded default is kombu's filesystem transport, which needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_FOLDER = Path(os.environ.get("BROKER_FOLDER", VAR_DIR / "broker"))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "control_folder": str(BROKER_FOLDER / "control"),  # else ./control in the cwd
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")

# Registry
# The audit chain's HMAC key (mlregistry/audit.py): required in production; in development
# it is derived from SECRET_KEY. The id is stored in every row; after a rotation, keys that
# sealed older rows stay here, by id, to verify them (JSON: {"id": "key"}).
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY", "")
AUDIT_HMAC_KEY_ID = os.environ.get("AUDIT_HMAC_KEY_ID", "1")
AUDIT_HMAC_RETIRED_KEYS = json.loads(os.environ.get("AUDIT_HMAC_RETIRED_KEYS") or "{}")
# How many prior production versions keep their artifacts whatever clean-up says
# (docs/registry.md#retention).
ARTIFACT_KEEP_PRIOR_PRODUCTION = 2
# Unreferenced artifact files younger than this may belong to a registration in flight.
ARTIFACT_ORPHAN_GRACE_SECONDS = int(os.environ.get("ARTIFACT_ORPHAN_GRACE_SECONDS", "3600"))
# Validation gate: a candidate worse than production by more than this fails
# (docs/training.md#validation-gate).
VALIDATION_GATE_MARGIN = float(os.environ.get("VALIDATION_GATE_MARGIN", "0.02"))
# Fairness gate (docs/training.md#fairness-gate): with the default metric, every protected
# attribute's parity ratio must reach this.
FAIRNESS_GATE_MIN_RATIO = float(os.environ.get("FAIRNESS_GATE_MIN_RATIO", "0.8"))
# The figure the fairness gate judges (core/ml/gates.py): a ratio against the minimum above,
# or a difference (demographic_parity_difference, equal_opportunity_difference,
# equalized_odds_difference, error_rate_difference) against the maximum below.
FAIRNESS_GATE_METRIC = os.environ.get("FAIRNESS_GATE_METRIC", "demographic_parity_ratio")
FAIRNESS_GATE_MAX_DIFFERENCE = float(os.environ.get("FAIRNESS_GATE_MAX_DIFFERENCE", "0.1"))
# Groups with fewer rows are reported but left out of the parity figures and the gate.
FAIRNESS_MIN_GROUP_SIZE = int(os.environ.get("FAIRNESS_MIN_GROUP_SIZE", "20"))
# A category column of register_model data with more distinct values than this gets no
# allowed list in its schema (docs/registry.md#personal-data): any string is served.
CATEGORY_ENUM_MAX = int(os.environ.get("CATEGORY_ENUM_MAX", "50"))

# Seed of every training run unless one is given (docs/training.md#reproducibility).
TRAINING_SEED = int(os.environ.get("TRAINING_SEED", "42"))
# The account scheduled work (retraining) acts as.
SYSTEM_USERNAME = "pulselytics-system"

# Training recipes (core.ml.recipes): a team adds its own by dotted path.
PULSELYTICS_RECIPES = [
    "core.ml.recipes.engagement.EngagementLikes",
    "core.ml.recipes.engagement.EngagementComments",
    "core.ml.recipes.lead_conversion.LeadConversion",
    "core.ml.recipes.engagement_anomaly.EngagementAnomaly",
]
# Hooks called around every training run and prediction (timing, logging, metrics).
PULSELYTICS_LIFECYCLE_HOOKS = [
    "core.ml.recipes.hooks.TimingHook",
    "core.ml.recipes.hooks.LoggingHook",
]

# Serving (docs/api.md)
PREDICT_MAX_BATCH = int(os.environ.get("PREDICT_MAX_BATCH", "2000"))
EXPLAIN_MAX_INSTANCES = 100
# Outcomes per bulk feedback call (POST /api/v1/feedback); a larger batch is refused whole.
FEEDBACK_MAX_BATCH = int(os.environ.get("FEEDBACK_MAX_BATCH", "10000"))
# Request bodies above this are refused with 413 payload_too_large before parsing (a
# gzipped or chunked body too: docs/api.md#request-bodies).
API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", str(8 * 1024 * 1024)))
# How long a predict answer is kept for a retry with the same Idempotency-Key
# (docs/api.md#idempotent-retries).
IDEMPOTENCY_WINDOW_SECONDS = int(os.environ.get("IDEMPOTENCY_WINDOW_SECONDS", "86400"))
# How long a serving process trusts a verified API key before checking it again (so a
# revoked key stops working everywhere within this many seconds).
API_KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "2"))
# How often a serving process looks for deploys and rollbacks (one tiny query).
REGISTRY_POLL_SECONDS = float(os.environ.get("REGISTRY_POLL_SECONDS", "1.0"))
# A version that failed to load is retried after this long (or at the next registry change).
MODEL_LOAD_RETRY_SECONDS = float(os.environ.get("MODEL_LOAD_RETRY_SECONDS", "30"))
# Browsers on these origins (e.g. https://dashboard.example.com) may call the API; none by
# default. Only /api/ answers CORS: the admin and the dashboard stay same-origin. Keys
# travel in the Authorization header, never in cookies, so credentials stay off.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", [])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_METHODS = ["GET", "OPTIONS", "POST"]
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "idempotency-key",
                      "x-request-id"]
CORS_EXPOSE_HEADERS = ["retry-after", "x-request-id"]

# Monitoring (docs/monitoring.md)
# Drift: the window of logged predictions compared with the reference profile.
DRIFT_WINDOW_HOURS = float(os.environ.get("DRIFT_WINDOW_HOURS", "24"))
DRIFT_MIN_SAMPLES = int(os.environ.get("DRIFT_MIN_SAMPLES", "100"))
# Logged predictions read per query by the checks, so memory does not grow with the window.
MONITORING_CHUNK_SIZE = int(os.environ.get("MONITORING_CHUNK_SIZE", "2000"))
# Live performance and fairness: predictions with feedback in this window.
PERFORMANCE_WINDOW_HOURS = float(os.environ.get("PERFORMANCE_WINDOW_HOURS", "168"))
PERFORMANCE_MIN_LABELLED = int(os.environ.get("PERFORMANCE_MIN_LABELLED", "30"))
# A live metric worse than the version's validation metric by more than this (relative)
# raises a performance alert.
PERFORMANCE_DEGRADATION_THRESHOLD = float(
    os.environ.get("PERFORMANCE_DEGRADATION_THRESHOLD", "0.2"))
# Service level objectives per model over a window.
SLO_WINDOW_MINUTES = float(os.environ.get("SLO_WINDOW_MINUTES", "60"))
SLO_P95_LATENCY_MS = float(os.environ.get("SLO_P95_LATENCY_MS", "300"))
SLO_MAX_ERROR_RATE = float(os.environ.get("SLO_MAX_ERROR_RATE", "0.01"))
SLO_MIN_REQUESTS = int(os.environ.get("SLO_MIN_REQUESTS", "20"))
# A/B tests: labelled predictions each arm needs before a verdict, the significance level,
# and how much worse (relative) a challenger's live metric may be before it is stopped.
AB_MIN_LABELLED = int(os.environ.get("AB_MIN_LABELLED", "30"))
AB_SIGNIFICANCE_LEVEL = float(os.environ.get("AB_SIGNIFICANCE_LEVEL", "0.05"))
AB_MAX_DEGRADATION = float(os.environ.get("AB_MAX_DEGRADATION", "0.1"))
# Independent evidence (docs/monitoring.md#independent-evidence): no client's labels count
# for more than this share of an arm's (or of a retrain's feedback rows), and an A/B
# verdict needs labels from at least AB_MIN_CLIENTS clients per arm.
AB_MAX_CLIENT_SHARE = float(os.environ.get("AB_MAX_CLIENT_SHARE", "0.5"))
AB_MIN_CLIENTS = int(os.environ.get("AB_MIN_CLIENTS", "2"))
# Canary deployments (docs/registry.md#canary-deployments): the longest bake a deployer may
# ask for, and how far a canary's error rate may exceed the champion's over the same time
# (an absolute difference of shares) before the guard rolls it back.
CANARY_MAX_BAKE_MINUTES = int(os.environ.get("CANARY_MAX_BAKE_MINUTES", "10080"))
CANARY_MAX_ERROR_RATE_INCREASE = float(os.environ.get("CANARY_MAX_ERROR_RATE_INCREASE", "0.01"))
# Anomaly spike: an anomaly model flagging at least this many times its validation share,
# significantly (one-sided binomial test at this p-value), over the drift window.
ANOMALY_SPIKE_FACTOR = float(os.environ.get("ANOMALY_SPIKE_FACTOR", "3"))
ANOMALY_SPIKE_P_VALUE = float(os.environ.get("ANOMALY_SPIKE_P_VALUE", "0.01"))
# Alerts: a repeat of an open alert within the cool-down is counted, not sent again.
ALERT_COOLDOWN_SECONDS = int(os.environ.get("ALERT_COOLDOWN_SECONDS", "3600"))
ALERT_EMAIL_RECIPIENTS = env_list("ALERT_EMAIL_RECIPIENTS", [])
ALERT_EMAIL_FROM = os.environ.get("ALERT_EMAIL_FROM", "pulselytics@localhost")
ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_SECRET = os.environ.get("ALERT_WEBHOOK_SECRET", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT_SECONDS", "5"))
ALERT_DELIVERY_MAX_RETRIES = int(os.environ.get("ALERT_DELIVERY_MAX_RETRIES", "5"))
ALERT_DELIVERY_RETRY_BACKOFF_SECONDS = int(
    os.environ.get("ALERT_DELIVERY_RETRY_BACKOFF_SECONDS", "30"))
# Registry events (docs/api.md#registry-events): every sealed audit row POSTed to this URL,
# signed as alert webhooks are but with a secret of its own; timeout, retries and back-off
# are the ALERT_WEBHOOK_TIMEOUT_SECONDS and ALERT_DELIVERY_* settings above. Empty: none.
REGISTRY_WEBHOOK_URL = os.environ.get("REGISTRY_WEBHOOK_URL", "")
REGISTRY_WEBHOOK_SECRET = os.environ.get("REGISTRY_WEBHOOK_SECRET", "")
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
# Seconds an SMTP connection may take, so a mail server that hangs cannot hold a worker.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
# Where the file backend (`make run`'s default: scripts/run.py) writes each e-mail.
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
# Retraining triggers: age of the production version, new labelled predictions since
# it was trained, or an open performance or drift alert.
RETRAIN_MAX_AGE_DAYS = float(os.environ.get("RETRAIN_MAX_AGE_DAYS", "7"))
RETRAIN_MIN_NEW_LABELS = int(os.environ.get("RETRAIN_MIN_NEW_LABELS", "50"))
# Deploy a retrained candidate that passes every gate without a reviewer (off by default:
# docs/monitoring.md#retraining).
AUTO_DEPLOY = env_bool("AUTO_DEPLOY")
# Separation of duties: whoever approved a version may not deploy, test or promote it
# (docs/registry.md#four-eyes). Off here so one person can try the whole flow; on in
# production.
REQUIRE_SEPARATE_DEPLOYER = env_bool("REQUIRE_SEPARATE_DEPLOYER")
# A running training job whose worker has not reported for this long is taken as dead.
TRAINING_JOB_STALE_SECONDS = int(os.environ.get("TRAINING_JOB_STALE_SECONDS", "600"))
# Prediction log retention (docs/operations.md#prediction-log).
PREDICTION_LOG_RETENTION_DAYS = int(os.environ.get("PREDICTION_LOG_RETENTION_DAYS", "90"))

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": ["predictions.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["predictions.api.auth.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["predictions.api.auth.HasAPIKey"],
    "DEFAULT_THROTTLE_CLASSES": ["predictions.api.auth.APIKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("API_KEY_THROTTLE_RATE", "6000/min"),
        # Instances, not requests: predict batches, and explanations (about 8x the CPU each).
        "api_key_instances": os.environ.get("API_KEY_INSTANCE_THROTTLE_RATE", "120000/min"),
        "api_key_explain": os.environ.get("API_KEY_EXPLAIN_THROTTLE_RATE", "600/min"),
    },
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "predictions.api.schema.ScopedAutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pulselytics API",
    "DESCRIPTION": "Predictions, explanations and outcome feedback for governed models.",
    "VERSION": "v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "predictions.api.schema.contract_postprocess"],
}
# Throttle counters; per process by default, shared with CACHE_URL (e.g. redis://...).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache",
         "LOCATION": os.environ["CACHE_URL"],
         # A cache that does not answer must cost a request milliseconds, not seconds.
         "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
        if os.environ.get("CACHE_URL")
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json",
                             "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Admin login (docs/operations.md#admin-login): a username is locked out at one address after
# repeated failures (django-axes), staff may be required to give a TOTP token (django-otp),
# and a session ends after SESSION_COOKIE_AGE_SECONDS.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("ADMIN_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("ADMIN_LOCKOUT_COOLOFF_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_COOLOFF_MESSAGE = (
    "Locked out: too many failed logins for this username from your address. "
    f"Try again in {AXES_COOLOFF_TIME.total_seconds() / 60:g} minutes."
)
AXES_LOCKOUT_CALLABLE = "core.admin_login.admin_login_locked_out"
AXES_CLIENT_IP_CALLABLE = "core.admin_login.client_ip_address"
# The request header in which the TLS proxy passes the client's address (X-Forwarded-For:
# its last entry); unset, the lockout counts by the peer address.
ADMIN_LOCKOUT_CLIENT_IP_HEADER = os.environ.get("ADMIN_LOCKOUT_CLIENT_IP_HEADER", "")
AXES_VERBOSE = False  # failures are still logged; no banner on every process start
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA")
OTP_TOTP_ISSUER = "Pulselytics"
# The admin never shows a device's secret: add_totp_device prints it once, to its user.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE_SECONDS", str(8 * 60 * 60)))
