"""Minimal Django settings for the celery-beat tests: the real django_celery_beat app on the test
Postgres (DATABASE_URL-like parts from the environment)."""
import os
from urllib.parse import urlparse

_url = urlparse(os.environ.get("FW_DJANGO_DB_URL", "postgres://postgres@localhost/postgres"))
SECRET_KEY = "flowwarden-test"
USE_TZ = True
TIME_ZONE = os.environ.get("FW_DJANGO_TIME_ZONE", "UTC")
CELERY_TIMEZONE = os.environ.get("FW_CELERY_TIMEZONE", "UTC")
INSTALLED_APPS = ["django_celery_beat"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path.lstrip("/"),
        "USER": _url.username or "",
        "PASSWORD": _url.password or "",
        "HOST": _url.hostname or "",
        "PORT": str(_url.port or ""),
    }
}
