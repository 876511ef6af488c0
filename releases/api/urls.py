from django.urls import path

from releases.api import approvals, evidence, gates, insights, trains, verifications, views

urlpatterns = [
    path("insights/", insights.InsightsApi.as_view(), name="api-insights"),
    path("releases/", views.ReleaseListApi.as_view(), name="api-releases"),
    path("releases/<int:pk>/", views.ReleaseDetailApi.as_view(), name="api-release"),
    path("releases/<int:pk>/log", views.ReleaseLogApi.as_view(), name="api-release-log"),
    path("releases/<int:pk>/gates", gates.ReleaseGatesApi.as_view(), name="api-release-gates"),
    path(
        "releases/<int:pk>/gates/<int:gate>/tick",
        gates.ChecklistTickApi.as_view(),
        name="api-release-gate-tick",
    ),
    path(
        "releases/<int:pk>/evidence",
        evidence.ReleaseEvidenceApi.as_view(),
        name="api-release-evidence",
    ),
    path("evidence/verify", evidence.EvidenceVerifyApi.as_view(), name="api-evidence-verify"),
    path(
        "releases/<int:pk>/verifications",
        verifications.ReleaseVerificationsApi.as_view(),
        name="api-release-verifications",
    ),
    path(
        "verifications/<int:pk>/<str:action>",
        verifications.VerificationDecisionApi.as_view(),
        name="api-verification-decide",
    ),
    path("releases/<int:pk>/cancel", views.ReleaseCancelApi.as_view(), name="api-release-cancel"),
    path(
        "releases/<int:pk>/deployments/",
        views.DeploymentCreateApi.as_view(),
        name="api-release-deploy",
    ),
    path(
        "services/<slug:slug>/releases/",
        views.ReleaseCreateApi.as_view(),
        name="api-service-releases",
    ),
    path("deployments/", views.DeploymentListApi.as_view(), name="api-deployments"),
    path("trains/", trains.TrainListApi.as_view(), name="api-trains"),
    path("trains/<int:pk>/", trains.TrainDetailApi.as_view(), name="api-train"),
    path("trains/<int:pk>/approve", trains.TrainDecisionApi.as_view(), name="api-train-approve"),
    path("trains/<int:pk>/reject", trains.TrainRejectApi.as_view(), name="api-train-reject"),
    path("trains/<int:pk>/cancel", trains.TrainCancelApi.as_view(), name="api-train-cancel"),
    path("deployments/<int:pk>/", views.DeploymentDetailApi.as_view(), name="api-deployment"),
    path(
        "deployments/<int:pk>/approve",
        views.DeploymentDecisionApi.as_view(),
        name="api-deployment-approve",
    ),
    path(
        "deployments/<int:pk>/approvals",
        approvals.DeploymentApprovalsApi.as_view(),
        name="api-deployment-approvals",
    ),
    path(
        "deployments/<int:pk>/reject",
        views.DeploymentRejectApi.as_view(),
        name="api-deployment-reject",
    ),
    path(
        "deployments/<int:pk>/cancel",
        views.DeploymentCancelApi.as_view(),
        name="api-deployment-cancel",
    ),
    path(
        "deployments/<int:pk>/canary/<str:action>",
        views.DeploymentCanaryApi.as_view(),
        name="api-deployment-canary",
    ),
    path(
        "deployments/<int:pk>/clusters/<str:cluster>/<str:action>",
        views.DeploymentClusterApi.as_view(),
        name="api-deployment-cluster",
    ),
    path("services/", views.ServiceListApi.as_view(), name="api-services"),
    path("services/<slug:slug>/", views.ServiceDetailApi.as_view(), name="api-service"),
]
