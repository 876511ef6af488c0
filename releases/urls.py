from django.urls import path

from releases import views

urlpatterns = [
    path("services/<slug:slug>/", views.service_detail, name="service-detail"),
    path("services/<slug:slug>/releases/", views.release_new, name="release-new"),
    path("releases/<int:pk>/", views.release_detail, name="release-detail"),
    path("releases/<int:pk>/status", views.release_status, name="release-status"),
    path("releases/<int:pk>/log", views.release_log, name="release-log"),
    path("releases/<int:pk>/deploy", views.release_deploy, name="release-deploy"),
    path("releases/<int:pk>/cancel", views.release_cancel_view, name="release-cancel"),
    path("deployments/<int:pk>/decide", views.deployment_decide_view, name="deployment-decide"),
    path(
        "deployments/<int:pk>/withdraw", views.deployment_withdraw_view, name="deployment-withdraw"
    ),
]
