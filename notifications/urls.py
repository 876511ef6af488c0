from django.urls import path

from notifications import views

urlpatterns = [
    path("teams/<slug:slug>/notifications/", views.team_notifications, name="team-notifications"),
    path(
        "teams/<slug:slug>/notifications/channels",
        views.team_channel_create,
        name="team-channel-create",
    ),
    path(
        "teams/<slug:slug>/notifications/channels/<int:pk>",
        views.team_channel_change,
        name="team-channel-change",
    ),
]
