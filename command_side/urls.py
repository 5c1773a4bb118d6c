"""Routes of the command API under /api/v1/analytics/. The ingestion and public flag routes are
served by the fast path (fast_path.py) in production; these Django views serve them in tests
and behind any plain Django server. The flag and experiment administration and the erasures are DRF.
"""

from django.urls import path

from command_side import erasures_api, experiments_api, views
from command_side.flags import api, public

urlpatterns = [
    path("capture/", views.capture, name="capture"),
    path("batch/", views.batch, name="batch"),
    path("session/start/", views.session_start, name="session-start"),
    path("session/<str:session_id>/end/", views.session_end, name="session-end"),
    path("public/feature-flags/", views.as_view(public.active_flags, ("GET",)), name="flags-active"),
    path("public/feature-flags/for_user/", views.as_view(public.for_user, ("GET", "POST")), name="flags-for-user"),
    path("admin/feature-flags/", api.FlagListView.as_view(), name="flag-list"),
    path("admin/feature-flags/<str:key>/", api.FlagDetailView.as_view(), name="flag-detail"),
    path("admin/feature-flags/<str:key>/history/", api.FlagHistoryView.as_view(), name="flag-history"),
    path("admin/experiments/", experiments_api.ExperimentListView.as_view(), name="experiment-list"),
    path("admin/experiments/<str:key>/", experiments_api.ExperimentDetailView.as_view(), name="experiment-detail"),
    path("admin/erasures/", erasures_api.ErasureListView.as_view(), name="erasure-list"),
]
