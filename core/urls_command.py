"""URL root of the command API: what mobile SDKs call with a public project key."""

from django.urls import include, path

from observability.urls import command_urlpatterns as observability_urlpatterns

urlpatterns = [
    path("", include((observability_urlpatterns, "observability"))),
    path("api/v1/analytics/", include("command_side.urls")),
]

# Errors outside the endpoints (an unknown path, a bug) in the same JSON shape as theirs.
handler400 = "command_side.views.bad_request"
handler403 = "command_side.views.permission_denied"
handler404 = "command_side.views.not_found"
handler500 = "command_side.views.server_error"
