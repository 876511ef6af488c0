from django import forms
from django.contrib import admin

from portal.audit.changes import AuditedAdmin
from portal.web.forms import KeepSecretForm, SecretInput
from releases.models import (
    AnalysisMetric,
    AnalysisTemplate,
    ApprovalPolicy,
    ApprovalRule,
    ChangeSystem,
    PromotionGate,
)


@admin.register(PromotionGate)
class PromotionGateAdmin(AuditedAdmin):
    list_display = ["name", "environment", "service", "kind", "soak_minutes", "enabled"]
    list_filter = ["environment", "kind", "enabled"]
    list_select_related = ["environment", "service"]
    autocomplete_fields = ["service"]
    fieldsets = [
        (None, {"fields": ["environment", "service", "name", "kind", "enabled", "order"]}),
        ("Soak time / query window", {"fields": ["soak_minutes"]}),
        ("Prometheus", {"fields": ["prometheus_url", "query", "min_value", "max_value"]}),
    ]


class AnalysisMetricInline(admin.StackedInline):
    model = AnalysisMetric
    extra = 1
    fields = [
        "name",
        "query",
        ("interval_seconds", "count", "initial_delay_seconds"),
        ("success_condition", "failure_condition"),
        ("failure_limit", "inconclusive_limit"),
        "order",
    ]


@admin.register(AnalysisTemplate)
class AnalysisTemplateAdmin(AuditedAdmin):
    """What to measure after each deployment to an environment (docs/verification.md)."""

    list_display = ["name", "environment", "service", "enabled"]
    list_filter = ["environment", "enabled"]
    fields = ["environment", "service", "name", "prometheus_url", "enabled"]
    inlines = [AnalysisMetricInline]


class ApprovalRuleInline(admin.StackedInline):
    model = ApprovalRule
    extra = 1
    fields = [("name", "required_approvals", "order"), ("role", "group", "team"), "users"]
    filter_horizontal = ["users"]


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(AuditedAdmin):
    """Who approves deployments to a protected environment (docs/change-management.md)."""

    list_display = ["name", "environment", "team", "requester_may_approve"]
    list_filter = ["environment"]
    fields = ["environment", "team", "name", "requester_may_approve"]
    inlines = [ApprovalRuleInline]


class ChangeSystemForm(KeepSecretForm):
    secret_field = "secret"
    secret = forms.CharField(
        widget=SecretInput(),
        required=False,
        help_text="ServiceNow: the password. Jira: the API token. Webhook: the HMAC secret. "
        "Stored encrypted; never shown again.",
    )

    class Meta:
        model = ChangeSystem
        fields = "__all__"


@admin.register(ChangeSystem)
class ChangeSystemAdmin(AuditedAdmin):
    """Where deployments to an environment open change requests (docs/change-management.md)."""

    form = ChangeSystemForm
    list_display = ["name", "environment", "kind", "require_approved", "enabled"]
    fields = ["environment", "name", "kind", "url", "username", "secret", "assignment_group",
              "jira", "require_approved", "window_hours", "enabled"]  # fmt: skip
