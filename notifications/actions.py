"""Notifications' audit actions (see portal/audit/actions.py)."""

from portal.audit.actions import Action


class Channels:
    CREATE = Action("channel.create", "Notification channel added")
    ENABLE = Action("channel.enable", "Notification channel enabled")
    PAUSE = Action("channel.pause", "Notification channel paused")
    DELETE = Action("channel.delete", "Notification channel removed")
