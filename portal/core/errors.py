"""The two kinds of error the product names: a refusal a workflow gives a user (a message
and the HTTP status it means; pages show the message, the API answers problem details),
and a failure of an outside system behind a door (a message for people, and whether
trying later may help)."""

from __future__ import annotations


class Refused(Exception):
    """A request the product refuses, with a message for the person who made it."""

    http_status = 400
    title = "Request refused"


class DoorError(Exception):
    """An outside system (a cluster, a registry, Jenkins, the directory…) failed; the message
    is for people and never carries a credential. `retryable`: trying later may help."""

    retryable = False
