"""WSGI entry of the command (ingestion) API process."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings_command")
application = get_wsgi_application()
