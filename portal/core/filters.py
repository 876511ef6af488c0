"""Filters that refuse what they do not know: a list filtered by an unknown value answers
400 naming the values it knows, never an empty page that looks like "nothing there"."""

from __future__ import annotations

import django_filters


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
