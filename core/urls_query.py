"""URL root of the query API: dashboards, analysts and the Django admin; the dashboard's pages
(query_side/dashboard) at the root."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from core.openapi import SchemaView
from observability.urls import query_urlpatterns as observability_urlpatterns

# The OpenAPI document of both hosts (core/openapi.py) and Swagger UI over it, served from local
# static files (drf-spectacular-sidecar). Public, as PostHog's /api/schema/: it says what
# docs/api.md says, and no project's data.
schema_urlpatterns = [
    path("", SchemaView.as_view(), name="schema"),
    path("swagger/", SpectacularSwaggerView.as_view(url_name="schema:schema"), name="swagger-ui"),
]

urlpatterns = [
    path("", include((observability_urlpatterns, "observability"))),
    path("admin/", admin.site.urls),
    path("api/v1/analytics/", include("query_side.urls")),
    path("api/v1/schema/", include((schema_urlpatterns, "schema"))),
    path("", include("query_side.dashboard.urls")),
]

# Errors outside DRF's views (an unknown path, a bug) in the same JSON shape as theirs.
handler400 = "query_side.errors.bad_request"
handler403 = "query_side.errors.permission_denied"
handler404 = "query_side.errors.not_found"
handler500 = "query_side.errors.server_error"
