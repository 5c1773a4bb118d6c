"""Which project a DRF request may touch. Apart from tenancy/auth.py, whose classes DRF loads
while it imports its own views (a module that imports rest_framework.views there is a cycle)."""

import re

from rest_framework import exceptions
from rest_framework.request import Request

from tenancy.api_errors import InvalidParameter
from tenancy.auth import KeyUser
from tenancy.models import Project

_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def project_for(request: Request) -> int:
    """The one project this request may touch: its key's, or the one a staff user names."""
    user = request.user
    if isinstance(user, KeyUser):
        return int(user.project_id)
    if not getattr(user, "is_staff", False):
        raise exceptions.PermissionDenied("Only staff users and personal API keys may use this API.")
    raw = request.query_params.get("project_id") or ""
    if not raw:
        raise InvalidParameter("project_id", "a staff user must name the project with ?project_id=")
    if not _WHOLE_NUMBER.fullmatch(raw):
        raise InvalidParameter("project_id", "project_id must be a whole number")
    if not Project.objects.filter(pk=int(raw)).exists():
        raise exceptions.NotFound(f"no project {raw}")
    return int(raw)
