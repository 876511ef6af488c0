"""Template tags of the pages."""

import uuid

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def form_token() -> str:
    """A one-time token for an action form: a double click or a resubmitted form acts once
    (see portal/once.py)."""
    return format_html('<input type="hidden" name="form_token" value="{}">', uuid.uuid4().hex)
