"""What every page's top bar shows: how many requests wait for the caller's decision."""

from releases.selectors import approvals_waiting_for


def approvals(request) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    return {"approvals_waiting": approvals_waiting_for(request.user).count()}
