"""Filters that refuse what they do not know: a list filtered by an unknown value answers
400 naming the values it knows, never an empty page that looks like "nothing there"; a
date is a date as the API's schema says (`YYYY-MM-DD`), never one of Django's other
spellings the schema does not."""

from __future__ import annotations

import re
from datetime import date

import django_filters
from django import forms

ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class IsoDateField(forms.DateField):
    """RFC 3339's full-date and nothing else (no spaces kept, no `10/25/2026`)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, date):
            return value
        try:
            if not ISO_DATE.fullmatch(value):
                raise ValueError
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise forms.ValidationError("Enter a date as YYYY-MM-DD.", code="invalid") from None


class IsoDateFilter(django_filters.DateFilter):
    field_class = IsoDateField


class KnownChoiceFilter(django_filters.ChoiceFilter):
    """A choice filter whose refusal (400) names the values it knows."""

    def __init__(self, *args, choices, **kwargs):
        def named():
            values = [value for value, _ in (choices() if callable(choices) else choices)]
            return {"invalid_choice": f"Unknown value %(value)s: one of {', '.join(values)}."}

        self._messages = named
        super().__init__(*args, choices=choices, **kwargs)

    @property
    def field(self):
        if not hasattr(self, "_field"):
            self.extra["error_messages"] = self._messages()
        return super().field
