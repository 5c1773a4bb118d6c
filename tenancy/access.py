"""Which project a DRF request may touch. Apart from tenancy/auth.py, whose classes DRF loads
while it imports its own views (a module that imports rest_framework.views there is a cycle)."""

import re
from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from tenancy.api_errors import InvalidParameter
from tenancy.auth import KeyUser
from tenancy.models import Project

_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def projects_readable_by(user: Any) -> QuerySet[Project]:
    """The projects a logged-in user may read: every one for a superuser, the projects that list
    a staff user among their `members` for the others, none for a user who is not staff."""
    if not getattr(user, "is_staff", False) or not getattr(user, "is_active", False):
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(members=user)


def project_for(request: Request) -> int:
    """The one project this request may touch: its key's, or the one a staff user names (one
    of `projects_readable_by` theirs: the dashboard's pages read with the same rule)."""
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
    # One query when the answer is yes (a superuser's is the existence check it always was).
    if not projects_readable_by(user).filter(pk=int(raw)).exists():
        if user.is_superuser or not Project.objects.filter(pk=int(raw)).exists():
            raise exceptions.NotFound(f"no project {raw}")
        raise exceptions.PermissionDenied(f"You are not a member of project {raw}: a superuser can add you to it.")
    return int(raw)
