"""URL root of the query API: dashboards, analysts and the Django admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/analytics/", include("query_side.urls")),
]
