from django.contrib import admin

from notifications.models import Attempt, Channel


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "kind", "enabled", "created_at"]
    list_filter = ["kind", "enabled", "team"]
    # The URL and secret are credentials: written here, never shown back.
    exclude = ["url", "secret"]

    def has_add_permission(self, request) -> bool:
        return False  # added on the team's notifications page, with the URL and secret


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = [
        "channel",
        "audit_event_id",
        "event_kind",
        "number",
        "status",
        "response_code",
        "created_at",
    ]
    list_filter = ["status", "event_kind"]
    readonly_fields = [f.name for f in Attempt._meta.fields]
