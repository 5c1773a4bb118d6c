"""WSGI entry of the command (ingestion) API process: the lean fast path in front of Django."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings_command")
django_application = get_wsgi_application()

from command_side.fast_path import wrap  # noqa: E402  (after Django is set up)

application = wrap(django_application)
