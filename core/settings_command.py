"""Settings of the command API process: the ingestion URL root and only the middleware it needs.

The hot path never reaches Django (command_side/fast_path.py answers ingestion and flag
evaluation before it). Django serves the flag and experiment administration, whose staff users
authenticate with the admin's session: so sessions and auth, and no more. (DRF's
SessionAuthentication enforces CSRF for session requests itself.)
"""

from core.settings import *  # noqa: F403

ROOT_URLCONF = "core.urls_command"
WSGI_APPLICATION = "core.wsgi_command.application"
MIDDLEWARE = [
    "observability.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
