"""Admin changes land in the audit log like every other action, secrets masked."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from portal.audit import Actor, RequestContext, audit_record
from portal.crypto import Secret

MASK = "********"


def snapshot(obj) -> dict:
    """The row's fields as JSON-friendly data; secrets only say whether they are set."""
    data = {}
    for key, value in model_to_dict(obj).items():
        if isinstance(value, Secret):
            data[key] = MASK if value else ""
        elif isinstance(value, list):
            data[key] = [getattr(v, "pk", v) for v in value]
        else:
            data[key] = getattr(value, "pk", value)
    return data


class AuditedAdmin(admin.ModelAdmin):
    """Records create/change/delete from the admin with before/after (changed fields)."""

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        after = snapshot(obj)
        if before is not None:
            changed = {k for k in after if before.get(k) != after.get(k)}
            changed |= {k for k in form.changed_data if k in after}
            before = {k: before.get(k) for k in sorted(changed)}
            after = {k: after[k] for k in sorted(changed)}
        label = obj._meta.model_name
        audit_record(
            actor=Actor.from_request(request),
            action=f"{label}.{'change' if change else 'create'}",
            target=obj,
            before=before,
            after=after,
            context=RequestContext.from_request(request),
        )

    def delete_model(self, request, obj):
        before = snapshot(obj)
        audit_record(
            actor=Actor.from_request(request),
            action=f"{obj._meta.model_name}.delete",
            target=obj,
            before=before,
            context=RequestContext.from_request(request),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
