from django.urls import path

from command_side import views

urlpatterns = [
    path("capture/", views.capture, name="capture"),
    path("batch/", views.batch, name="batch"),
    path("session/start/", views.session_start, name="session-start"),
    path("session/<str:session_id>/end/", views.session_end, name="session-end"),
]
