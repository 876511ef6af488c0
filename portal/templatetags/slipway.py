"""Template tags of the pages."""

import json
import uuid

from django import template
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def form_token() -> str:
    """A one-time token for an action form: a double click or a resubmitted form acts once
    (see portal/once.py)."""
    return format_html('<input type="hidden" name="form_token" value="{}">', uuid.uuid4().hex)


@register.simple_tag
def diff_line(line: str) -> str:
    """One line of a unified diff, coloured by what it does."""
    kind = (
        "hunk"
        if line.startswith("@@")
        else "add"
        if line.startswith("+") and not line.startswith("+++")
        else "del"
        if line.startswith("-") and not line.startswith("---")
        else ""
    )
    return format_html('<span class="{}">{}</span>', kind, line) if kind else line


@register.filter
def as_json(value) -> str:
    """Audit data as JSON, the way it is stored (not Python's repr)."""
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)
