"""Settings of the command API process: the ingestion URL root and only the middleware it needs.

The hot path has no sessions, CSRF or auth middleware: SDKs authenticate by project key.
"""

from core.settings import *  # noqa: F403

ROOT_URLCONF = "core.urls_command"
WSGI_APPLICATION = "core.wsgi_command.application"
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
