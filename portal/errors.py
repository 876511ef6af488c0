"""The base of every refusal a workflow gives a user: a message and the HTTP status it
means. Pages show the message; the API answers it as problem details."""

from __future__ import annotations


class Refused(Exception):
    """A request the product refuses, with a message for the person who made it."""

    http_status = 400
    title = "Request refused"
