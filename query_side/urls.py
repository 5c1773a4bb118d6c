"""Routes of the query API, mounted under /api/v1/analytics/ by core.urls_query. Read-only: no
route here may write, and the command API's routes (capture, batch, session) never live here.
"""

from django.urls import path

from query_side import analysis_views, views

urlpatterns = [
    path("admin/events/", views.EventListView.as_view(), name="event-list"),
    path("admin/events/event_counts/", views.EventCountView.as_view(), name="event-counts"),
    path("admin/event-aggregates/", views.EventAggregateView.as_view(), name="event-aggregates"),
    path("admin/active-users/", views.ActiveUserView.as_view(), name="active-users"),
    path("admin/stickiness/", views.StickinessView.as_view(), name="stickiness"),
    path("admin/trends/", views.TrendsView.as_view(), name="trends"),
    path("admin/retention/", views.RetentionView.as_view(), name="retention"),
    path("admin/funnels/", analysis_views.FunnelView.as_view(), name="funnels"),
    path("admin/event-types/", analysis_views.EventTypeView.as_view(), name="event-types"),
    path("admin/event-properties/", analysis_views.EventPropertyView.as_view(), name="event-properties"),
    path("admin/event-property-values/", analysis_views.EventPropertyValueView.as_view(), name="event-property-values"),
    path("admin/bad-events/", views.BadEventListView.as_view(), name="bad-events"),
    path("admin/sessions/", views.SessionListView.as_view(), name="session-list"),
    path("admin/sessions/<str:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("admin/session-metrics/", views.SessionMetricView.as_view(), name="session-metrics"),
    path("admin/people/", views.PersonListView.as_view(), name="person-list"),
    path("admin/people/<str:person_id>/", views.PersonDetailView.as_view(), name="person-detail"),
    # The command host administers flags and experiments; nginx sends these two reads of them,
    # from the read models, here (docker/nginx.conf).
    path("admin/feature-flags/<str:key>/exposures/", views.FlagExposureView.as_view(), name="flag-exposures"),
    path("admin/experiments/<str:key>/results/", views.ExperimentResultView.as_view(), name="experiment-results"),
    # Read-only lists of the same, for the dashboard's pickers (names apart from the command host's).
    path("admin/flag-definitions/", views.FlagDefinitionListView.as_view(), name="flag-definitions"),
    path("admin/experiment-definitions/", views.ExperimentDefinitionListView.as_view(), name="experiment-definitions"),
]
