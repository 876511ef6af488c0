from django.contrib import admin

from portal.admin_audit import AuditedAdmin
from portal.forms import JenkinsServerForm
from portal.models import (
    ApiToken,
    AuditEvent,
    DeploymentTarget,
    Environment,
    JenkinsServer,
    Membership,
    Service,
    Team,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


class DeploymentTargetInline(admin.TabularInline):
    model = DeploymentTarget
    extra = 0


@admin.register(Service)
class ServiceAdmin(AuditedAdmin):
    list_display = ["name", "slug", "team", "jenkins_job", "image_repository"]
    list_filter = ["team"]
    search_fields = ["name", "slug"]
    inlines = [DeploymentTargetInline]


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ["name", "slug", "order", "requires_approval", "auto_rollback"]


@admin.register(JenkinsServer)
class JenkinsServerAdmin(AuditedAdmin):
    form = JenkinsServerForm
    list_display = ["name", "url", "username"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    list_display = ["name", "prefix", "user", "created_at", "expires_at", "revoked_at"]
    readonly_fields = ["prefix", "token_hash", "created_at", "last_used_at"]
    exclude = []

    def has_add_permission(self, request):
        return False  # issued with `manage.py issue_token`, which shows the token once


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "actor_name", "action", "target_repr"]
    list_filter = ["action", "actor_type"]
    search_fields = ["actor_name", "target_repr", "action"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
