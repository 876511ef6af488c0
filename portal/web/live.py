"""The stream open pages listen on: `GET /events/?channel=changes&channel=log-12`
(server-sent events, django-eventstream under ASGI).

Who may listen: a signed-in user, on `changes` and `approvals` (events there carry ids
only, portal/core/live.py: the page fetches what changed through the ordinary views and
their permission checks), and on `log-<id>` of a release they may see. A reconnect that
sends `Last-Event-ID` (browsers do) gets what it missed from the event store (Redis, a
day).
"""

from __future__ import annotations

import asyncio
import re

from django.apps import apps
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.http import require_GET
from django_eventstream import views as eventstream_views
from django_eventstream.channelmanager import ChannelManagerBase

from portal.access.permissions import visible_teams
from portal.core.live import APPROVALS, CHANGES
from portal.core.logs import log

_LOG = re.compile(r"^log-(\d{1,12})$")
_OPEN = {CHANGES, APPROVALS}
# What a page may ask for: its channels, and where to resume (browsers send the header).
_ALLOWED_PARAMETERS = {"channel", "lastEventId"}
MAX_CHANNELS = 10


class LiveChannels(ChannelManagerBase):
    def get_channels_for_request(self, request, view_kwargs) -> set[str]:
        return set(request.GET.getlist("channel"))

    def can_read_channel(self, user, channel: str) -> bool:
        if user is None or not user.is_authenticated:
            return False
        if channel in _OPEN:
            return True
        match = _LOG.match(channel)
        # The release engine is built on this floor, so its model is looked up by name.
        release = apps.get_model("releases", "Release")
        return (
            bool(match)
            and release.objects.filter(
                pk=int(match.group(1)), service__team__in=visible_teams(user)
            ).exists()
        )

    def is_channel_reliable(self, channel: str) -> bool:
        return True


@require_GET
def live_events(request):
    """The event stream, after the checks django-eventstream leaves to its host: signed
    in, known parameters, known channel names (each a clear 4xx, not a stream error)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Sign in to follow changes."}, status=403)
    unknown = set(request.GET) - _ALLOWED_PARAMETERS
    if unknown:
        return HttpResponseBadRequest(
            f"Unknown parameter(s): {', '.join(sorted(unknown))}. Allowed: channel, lastEventId."
        )
    channels = request.GET.getlist("channel")
    if not channels or len(channels) > MAX_CHANNELS:
        return HttpResponseBadRequest(f"Give 1 to {MAX_CHANNELS} channel parameters.")
    bad = [c for c in channels if c not in _OPEN and not _LOG.match(c)]
    if bad:
        return HttpResponseBadRequest(
            f"Unknown channel(s): {', '.join(bad)}. Channels: changes, approvals, log-<release id>."
        )
    manager = LiveChannels()
    refused = [c for c in channels if not manager.can_read_channel(request.user, c)]
    if refused:
        return JsonResponse({"detail": f"You may not follow: {', '.join(refused)}."}, status=403)
    return eventstream_views.events(request)


class _ResilientListeners(eventstream_views.ListenerManager):
    """django-eventstream's listener manager, whose one Redis subscription per process
    would end for good at the first lost connection (a Redis restart): this one
    subscribes again, so open streams keep hearing events."""

    async def start_redis_listener(self) -> None:
        while True:
            try:
                await self.redis_listener.start()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live_subscription_lost", error=type(error).__name__)
                await asyncio.sleep(1)
                self.redis_listener = eventstream_views.RedisListener()


def install_resilient_listeners() -> None:
    if not isinstance(eventstream_views.listener_manager, _ResilientListeners):
        eventstream_views.listener_manager = _ResilientListeners()
