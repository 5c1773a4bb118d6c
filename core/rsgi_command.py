"""RSGI entry of the command API process, what granian serves (`--interface rsgi`): request
bodies are read on the event loop within TIDELOG_BODY_READ_TIMEOUT_SECONDS, then the ingestion
endpoints (the fast path's) or Django answer. core.wsgi_command is the same app under WSGI."""

from django.conf import settings

# isort: off
from core.wsgi_command import django_application  # first: it sets Django up
from command_side.rsgi_edge import Edge
# isort: on

application = Edge(django_application, body_timeout_seconds=settings.TIDELOG_BODY_READ_TIMEOUT_SECONDS)
