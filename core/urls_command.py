"""URL root of the command API: what mobile SDKs call with a public project key."""

from django.urls import include, path

urlpatterns = [path("api/v1/analytics/", include("command_side.urls"))]
