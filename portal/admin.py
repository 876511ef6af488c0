from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from portal.access.models import ApiToken, LdapGroupRole, Membership, Team
from portal.audit.actions import Access
from portal.audit.changes import AuditedAdmin
from portal.audit.models import AuditCheck, AuditEvent
from portal.catalog.models import (
    CatalogSource,
    DeploymentTarget,
    DroneServer,
    Environment,
    EnvironmentLink,
    EnvironmentVariable,
    Freeze,
    JenkinsServer,
    Registry,
    Service,
)
from portal.web.forms import (
    CatalogSourceForm,
    DroneServerForm,
    EnvironmentVariableForm,
    JenkinsServerForm,
    RegistryForm,
)

User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """Users: every create, change and deactivation audited (the password never is), a
    superuser grant called out as its own event."""

    def after_audited_save(self, request, obj, before, after) -> None:
        if before is not None and after.get("is_superuser") and not before.get("is_superuser"):
            self._audit(request, obj, Access.SUPERUSER_GRANT, after={"user": obj.get_username()})


@admin.register(LdapGroupRole)
class LdapGroupRoleAdmin(AuditedAdmin):
    list_display = ["group_dn", "team", "role"]
    list_filter = ["team", "role"]


@admin.register(Freeze)
class FreezeAdmin(AuditedAdmin):
    list_display = ["environment", "team", "starts_at", "ends_at", "reason", "created_by"]
    list_filter = ["environment", "team"]


@admin.register(AuditCheck)
class AuditCheckAdmin(admin.ModelAdmin):
    list_display = ["started_at", "ok", "events", "broken_event_id", "trigger"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ["user", "role", "source"]


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
    list_display = ["name", "slug", "team", "jenkins_job", "image_repository", "catalog_source"]
    list_filter = ["team", "catalog_source"]
    search_fields = ["name", "slug"]
    readonly_fields = ["catalog_repository", "catalog_commit", "orphaned_at", "backstage_entity"]
    inlines = [DeploymentTargetInline]


@admin.register(DroneServer)
class DroneServerAdmin(AuditedAdmin):
    form = DroneServerForm
    list_display = ["name", "url"]


@admin.register(CatalogSource)
class CatalogSourceAdmin(AuditedAdmin):
    """Repositories whose slipway.yaml declare services (docs/catalog.md)."""

    form = CatalogSourceForm
    list_display = ["name", "enabled", "last_synced_at"]
    readonly_fields = ["last_synced_at", "last_report"]


class EnvironmentLinkInline(admin.TabularInline):
    model = EnvironmentLink
    extra = 1


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ["name", "slug", "order", "requires_approval", "auto_rollback"]
    inlines = [EnvironmentLinkInline]


@admin.register(EnvironmentVariable)
class EnvironmentVariableAdmin(AuditedAdmin):
    form = EnvironmentVariableForm
    list_display = ["name", "environment", "target", "shown_value"]
    list_filter = ["environment", "is_secret"]
    search_fields = ["name"]

    @admin.display(description="Value")
    def shown_value(self, variable: EnvironmentVariable) -> str:
        return "secret, set" if variable.is_secret else variable.value


@admin.register(Registry)
class RegistryAdmin(AuditedAdmin):
    form = RegistryForm
    list_display = ["name", "url", "username"]


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
