"""Admin changes land in the audit log like every other action, secrets masked: the
object's own fields, its inline rows (a team's memberships, a service's targets), and
users (with superuser grants called out)."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import model_to_dict

from portal.audit.actions import Action, model_change
from portal.audit.chain import Actor, RequestContext, audit_record
from portal.core.crypto import EncryptedTextField, Secret

MASK = "********"
# Never copied into an audit event, whatever the model.
HIDDEN_FIELDS = {"password", "token_hash"}


def snapshot(obj) -> dict:
    """The row's fields as JSON-friendly data; secrets only say whether they are set."""
    data = {}
    encrypted = {f.name for f in obj._meta.fields if isinstance(f, EncryptedTextField)}
    for key, value in model_to_dict(obj).items():
        if key in HIDDEN_FIELDS or key in encrypted or isinstance(value, Secret):
            data[key] = MASK if value else ""
        elif isinstance(value, list):
            data[key] = [getattr(v, "pk", v) for v in value]
        else:
            data[key] = getattr(value, "pk", value)
    return data


def _changes(before: dict | None, after: dict, changed: list[str]) -> tuple[dict | None, dict]:
    if before is None:
        return None, after
    keys = sorted(
        {k for k in after if before.get(k) != after.get(k)} | {k for k in changed if k in after}
    )
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


class AuditedAdmin(admin.ModelAdmin):
    """Records create/change/delete from the admin with before/after (changed fields),
    for the object and for its inline rows."""

    def _audit(self, request, obj, verb: str | Action, before=None, after=None) -> None:
        """Record `verb` (create, change, delete) of `obj`, or a named action."""
        action = verb if isinstance(verb, Action) else model_change(obj._meta.model_name, verb)
        audit_record(
            actor=Actor.from_request(request),
            action=action,
            target=obj,
            before=before,
            after=after,
            context=RequestContext.from_request(request),
        )

    def save_model(self, request, obj, form, change):
        before = snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        super().save_model(request, obj, form, change)
        before, after = _changes(before, snapshot(obj), form.changed_data)
        self._audit(request, obj, "change" if change else "create", before, after)
        self.after_audited_save(request, obj, before, after)

    def after_audited_save(self, request, obj, before, after) -> None:
        """A hook for admins that call out particular changes."""

    def save_formset(self, request, form, formset, change):
        initial = {f.instance.pk: dict(f.initial) for f in formset.initial_forms}
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:  # recorded first: deleting clears the row's id
                self._audit(request, deleted.instance, "delete", before=snapshot(deleted.instance))
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self._audit(request, obj, "create", after=snapshot(obj))
        for obj, fields in formset.changed_objects:
            before = {
                k: getattr(initial.get(obj.pk, {}).get(k), "pk", initial.get(obj.pk, {}).get(k))
                for k in fields
            }
            after = {k: snapshot(obj).get(k) for k in fields}
            self._audit(request, obj, "change", before, after)

    def delete_model(self, request, obj):
        self._audit(request, obj, "delete", before=snapshot(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
