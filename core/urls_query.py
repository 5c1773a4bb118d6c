"""URL root of the query API: dashboards, analysts and the Django admin; the dashboard's pages
(query_side/dashboard) at the root."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/analytics/", include("query_side.urls")),
    path("", include("query_side.dashboard.urls")),
]

# Errors outside DRF's views (an unknown path, a bug) in the same JSON shape as theirs.
handler400 = "query_side.errors.bad_request"
handler403 = "query_side.errors.permission_denied"
handler404 = "query_side.errors.not_found"
handler500 = "query_side.errors.server_error"
