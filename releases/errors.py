"""Why the release workflow refuses a request, for the user, with the HTTP status it means.

Pages show the message; the API answers it with `http_status`: 400 for a request that can
never succeed as given (what the API's schema says it refuses), 403 for a missing role,
404 for something named that does not exist, 409 for one the current state refuses (busy,
not built, orphaned, not what the environment before runs now, decided meanwhile).
"""

from __future__ import annotations

from portal.access.permissions import RoleMissing
from portal.core.errors import Refused


class ReleaseRefused(Refused):
    """The request cannot be honoured as given; the message says why."""

    http_status = 400


class NotPermitted(RoleMissing):
    """The caller lacks the role (or is the wrong person) for this action: a 403, on a
    page as in the API (not a message, as refusals of the request itself are)."""


class Conflict(ReleaseRefused):
    """The request is fine but the current state refuses it; it may succeed later."""

    http_status = 409
    title = "Conflict with the current state"


class Unknown(ReleaseRefused):
    """A request naming something that does not exist, or that the caller may not see."""

    http_status = 404
    title = "Not found"


class DeploymentBusy(Conflict):
    """Another deployment of this service is running in this environment."""


class PromotionRefused(Conflict):
    """The release is not what the environment before this one runs now."""
