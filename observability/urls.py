"""The probes of each host, under the `observability` namespace at its root."""

from django.urls import path

from observability import views

command_urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.command_readyz, name="readyz"),
]
query_urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.query_readyz, name="readyz"),
    path("metrics", views.prometheus_metrics, name="metrics"),
]
