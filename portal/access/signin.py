"""Sign-ins, sign-outs and failed sign-ins in the audit log (with the address).

Django announces them only as signals, so these receivers are the one place they are
seen; they record, and decide nothing."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from portal.audit.actions import Auth
from portal.audit.chain import Actor, RequestContext, audit_record

MAX_NAME = 150


def _context(request) -> RequestContext | None:
    return RequestContext.from_request(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="slipway-audit-login")
def _signed_in(sender, request, user, **kwargs) -> None:
    backend = getattr(user, "backend", "") or ""
    audit_record(
        actor=Actor.for_user(user),
        action=Auth.LOGIN,
        target=user,
        context=_context(request),
        after={"backend": backend.rsplit(".", 1)[-1]},
    )


@receiver(user_logged_out, dispatch_uid="slipway-audit-logout")
def _signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(
            actor=Actor.for_user(user), action=Auth.LOGOUT, target=user, context=_context(request)
        )


@receiver(user_login_failed, dispatch_uid="slipway-audit-login-failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password scrubbed by Django; only the name is kept.
    username = str(credentials.get("username", ""))[:MAX_NAME]
    audit_record(
        actor=Actor("user", "", username or "anonymous"),
        action=Auth.LOGIN_FAILED,
        context=_context(request),
        after={"username": username},
    )
