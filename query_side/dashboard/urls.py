"""Routes of the dashboard's pages and its login, mounted at the query host's root by
core.urls_query."""

from django.contrib.auth import views as auth_views
from django.urls import path

from query_side.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.root, name="root"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/login/"), name="logout"),
    path("overview/", views.page("overview"), name="overview"),
    path("trends/", views.page("trends"), name="trends"),
    path("retention/", views.page("retention"), name="retention"),
    path("funnels/", views.page("funnels"), name="funnels"),
    path("sessions/", views.page("sessions"), name="sessions"),
    path("sessions/<str:session_id>/", views.page("session"), name="session"),
    path("flags/", views.page("flags"), name="flags"),
    path("experiments/", views.page("experiments"), name="experiments"),
]
