from django.urls import path

from releases.api.hooks import JenkinsNotificationHook
from releases.views import (
    deployments,
    evidence,
    history,
    insights,
    releases,
    services,
    trains,
    verifications,
)

urlpatterns = [
    path("hooks/jenkins/<str:name>", JenkinsNotificationHook.as_view(), name="jenkins-hook"),
    path("", services.dashboard, name="home"),
    path("approvals/", deployments.approvals, name="approvals"),
    path("approvals/count", deployments.approvals_count, name="approvals-count"),
    path("trains/", trains.trains_page, name="trains"),
    path("trains/new", trains.train_new, name="train-new"),
    path("trains/<int:pk>/", trains.train_detail, name="train-detail"),
    path("trains/<int:pk>/decide", trains.train_decide_view, name="train-decide"),
    path("trains/<int:pk>/cancel", trains.train_cancel_view, name="train-cancel"),
    path("history/", history.history_page, name="history"),
    path("insights/", insights.insights_page, name="insights"),
    path("services/<slug:slug>/", services.service_detail, name="service-detail"),
    path("services/<slug:slug>/history/", history.history_page, name="service-history"),
    path("services/<slug:slug>/audit/", services.service_audit, name="service-audit"),
    path("services/<slug:slug>/releases/", services.release_new, name="release-new"),
    path("releases/<int:pk>/", releases.release_detail, name="release-detail"),
    path("releases/<int:pk>/evidence", evidence.evidence_page, name="release-evidence"),
    path("releases/<int:pk>/evidence.json", evidence.evidence_json, name="release-evidence-json"),
    path("evidence/verify", evidence.evidence_verify, name="evidence-verify"),
    path("releases/<int:pk>/status", releases.release_status, name="release-status"),
    path("releases/<int:pk>/log", releases.release_log, name="release-log"),
    path("releases/<int:pk>/confirm", releases.release_confirm, name="release-confirm"),
    path(
        "releases/<int:pk>/confirm/manifests",
        releases.release_confirm_manifests,
        name="release-confirm-manifests",
    ),
    path("releases/<int:pk>/deploy", releases.release_deploy, name="release-deploy"),
    path("releases/<int:pk>/gates", releases.release_gates_check, name="release-gates-check"),
    path(
        "releases/<int:pk>/gates/<int:gate>/tick",
        releases.release_gate_tick,
        name="release-gate-tick",
    ),
    path("releases/<int:pk>/cancel", releases.release_cancel_view, name="release-cancel"),
    path(
        "verifications/<int:pk>/decide",
        verifications.verification_decide_view,
        name="verification-decide",
    ),
    path("deployments/<int:pk>/", deployments.deployment_detail, name="deployment-detail"),
    path(
        "deployments/<int:pk>/clusters/<int:rollout>",
        deployments.deployment_cluster_view,
        name="deployment-cluster",
    ),
    path(
        "deployments/<int:pk>/decide", deployments.deployment_decide_view, name="deployment-decide"
    ),
    path(
        "deployments/<int:pk>/canary",
        deployments.deployment_canary_view,
        name="deployment-canary",
    ),
    path(
        "deployments/<int:pk>/withdraw",
        deployments.deployment_withdraw_view,
        name="deployment-withdraw",
    ),
]
