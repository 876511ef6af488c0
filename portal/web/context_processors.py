"""What every page's <body> says about its live updates (static/js/slipway.js)."""

from django.conf import settings


def live(request) -> dict:
    return {"live_fallback_seconds": settings.SLIPWAY_LIVE_FALLBACK_SECONDS}
