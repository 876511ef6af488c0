"""Waiting on releases the worker moves along."""

from __future__ import annotations

from releases.choices import RELEASE_ACTIVE
from releases.models import Release
from tests.support.waiting import wait_until


def wait_for_release(release: Release, statuses=None, timeout: float = 40) -> Release:
    """Wait until the release leaves the active statuses (or reaches one given)."""

    def reached():
        release.refresh_from_db()
        if statuses:
            return release.status in statuses
        return release.status not in RELEASE_ACTIVE

    wait_until(reached, timeout, f"release #{release.pk} ending (now {release.status})")
    return release
