from django.contrib import admin

from portal.audit.changes import AuditedAdmin
from releases.models import PromotionGate


@admin.register(PromotionGate)
class PromotionGateAdmin(AuditedAdmin):
    list_display = ["name", "environment", "kind", "soak_minutes", "enabled"]
    list_filter = ["environment", "kind", "enabled"]
    fieldsets = [
        (None, {"fields": ["environment", "name", "kind", "enabled", "order"]}),
        ("Soak time / query window", {"fields": ["soak_minutes"]}),
        ("Prometheus", {"fields": ["prometheus_url", "query", "min_value", "max_value"]}),
    ]
