from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from portal.ops import health
from portal.web import api, catalog, views
from portal.web import teams as team_views
from portal.web.api_reference import api_reference
from portal.web.live import live_events

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("events/", live_events, name="live-events"),
    path("login/", views.sign_in, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_page, name="audit"),
    path("audit/verify", views.audit_verify_now, name="audit-verify"),
    path("catalog/", catalog.catalog_page, name="catalog"),
    path("catalog/<int:pk>/sync", catalog.catalog_sync_view, name="catalog-sync"),
    path("hooks/catalog/<int:pk>", catalog.CatalogPushHook.as_view(), name="catalog-hook"),
    path(
        "api/v1/catalog/sources/",
        catalog.CatalogSourceListApi.as_view(),
        name="api-catalog-sources",
    ),
    path(
        "api/v1/catalog/sources/<int:pk>/sync",
        catalog.CatalogSourceSyncApi.as_view(),
        name="api-catalog-sync",
    ),
    path("teams/<slug:slug>/", team_views.team_detail, name="team-detail"),
    path("teams/<slug:slug>/members", team_views.team_member_set, name="team-member-set"),
    path(
        "teams/<slug:slug>/members/<int:pk>/remove",
        team_views.team_member_remove,
        name="team-member-remove",
    ),
    path("teams/<slug:slug>/targets", team_views.team_target_save, name="team-target-create"),
    path(
        "teams/<slug:slug>/targets/<int:pk>", team_views.team_target_save, name="team-target-save"
    ),
    path(
        "teams/<slug:slug>/targets/<int:pk>/adopt",
        team_views.team_target_adopt,
        name="team-target-adopt",
    ),
    path("teams/<slug:slug>/freezes", team_views.team_freeze_create, name="team-freeze-create"),
    path(
        "teams/<slug:slug>/freezes/<int:pk>/end",
        team_views.team_freeze_delete,
        name="team-freeze-delete",
    ),
    path("tokens/", team_views.tokens, name="tokens"),
    path("tokens/new", team_views.token_create, name="token-create"),
    path("tokens/<int:pk>/revoke", team_views.token_revoke_view, name="token-revoke"),
    path("admin/", admin.site.urls),
    path("api/v1/me", api.MeApi.as_view(), name="api-me"),
    path("api/v1/audit-events/", api.AuditEventListApi.as_view(), name="api-audit-events"),
    path(
        "api/v1/environments/<slug:slug>/freezes/",
        api.FreezeListApi.as_view(),
        name="api-freezes",
    ),
    path(
        "api/v1/environments/<slug:slug>/freezes/<int:pk>/",
        api.FreezeDetailApi.as_view(),
        name="api-freeze",
    ),
    path("api/v1/", include("releases.api.urls")),
    # The schema and its docs page are public, like any API reference; the calls are not.
    path(
        "api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"
    ),
    path("api/docs/", api_reference, name="api-docs"),
    path("", include("notifications.urls")),
    path("", include("releases.urls")),
]

handler400 = "portal.web.views.bad_request"
handler403 = "portal.web.views.permission_denied"
handler404 = "portal.web.views.page_not_found"
handler500 = "portal.web.views.server_error"
