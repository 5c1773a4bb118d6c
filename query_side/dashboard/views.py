"""The dashboard's pages: decide who may see which project, then render a page's shell. The
numbers come from the query API, which the page's script fetches with the same session (and
which applies the same rule, tenancy.access.project_for)."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from tenancy.access import projects_readable_by

# (URL name, title): the navigation, in order. The session timeline is reached from the list.
PAGES = (
    ("overview", "Overview"),
    ("trends", "Trends"),
    ("retention", "Retention"),
    ("funnels", "Funnels"),
    ("sessions", "Sessions"),
    ("flags", "Flags"),
    ("experiments", "Experiments"),
)
# The range presets beside the date pickers, in days back from today (UTC).
PRESET_DAYS = (1, 7, 30, 90)


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(request, "dashboard/refused.html", {"reason": reason}, status=403)


def _with(request: HttpRequest, **changes: str | None) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    query = request.GET.copy()
    for name, value in changes.items():
        query.pop(name, None)
        if value is not None:
            query[name] = value
    return f"{request.path}?{query.urlencode()}"


def _page(request: HttpRequest, page: str, **context: Any) -> HttpResponse:
    """A page for a staff user and one project they may read, named by ?project_id= (the first
    of theirs when absent, by a redirect, so every page's URL says what it shows)."""
    user = request.user
    if not user.is_staff:
        return _refused(request, f"{user} is not a staff user: the dashboard is for staff users.")
    projects = list(projects_readable_by(user).values("id", "name"))
    raw = request.GET.get("project_id", "")
    if not raw:
        if not projects:
            return render(request, "dashboard/no_project.html", {"pages": PAGES})
        return HttpResponseRedirect(_with(request, project_id=str(projects[0]["id"])))
    project = next((row for row in projects if str(row["id"]) == raw), None)
    if project is None:
        return _refused(request, f"{user} may not read project {raw!r}: a superuser can add you to it in the admin.")
    today = datetime.now(UTC).date()
    # "Last N d": from the start of the UTC day N days ago until now.
    presets = [
        (f"{days} d", _with(request, after=(today - timedelta(days=days)).isoformat(), before=None))
        for days in PRESET_DAYS
    ]
    return render(
        request,
        f"dashboard/{page}.html",
        {
            "page": page,
            "pages": PAGES,
            "projects": projects,
            "project": project,
            "after": request.GET.get("after", ""),
            "before": request.GET.get("before", ""),
            "presets": presets,
            "query": request.GET,
            **context,
        },
    )


def root(request: HttpRequest) -> HttpResponse:
    """/ opens the overview, keeping the query (a project, a range)."""
    query = request.GET.urlencode()
    return HttpResponseRedirect("/overview/" + (f"?{query}" if query else ""))


def page(name: str) -> Callable[..., HttpResponse]:
    """The view of one page (its template, dashboard/<name>.html), behind login; a path
    parameter (a session's id) reaches the template by its name."""

    @login_required
    def view(request: HttpRequest, **path_parameters: str) -> HttpResponse:
        return _page(request, name, **path_parameters)

    view.__name__ = name
    return view
