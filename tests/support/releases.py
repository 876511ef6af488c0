"""Waiting on releases the worker moves along."""

from __future__ import annotations

import time

from releases.choices import RELEASE_ACTIVE
from releases.models import Release


def wait_for_release(release: Release, statuses=None, timeout: float = 40) -> Release:
    """Poll the database until the release leaves the active statuses (or reaches one given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        release.refresh_from_db()
        if (statuses and release.status in statuses) or (
            not statuses and release.status not in RELEASE_ACTIVE
        ):
            return release
        time.sleep(0.1)
    raise AssertionError(f"release still {release.status} ({release.progress}) after {timeout}s")
