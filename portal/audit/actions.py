"""The audit log's vocabulary: every action an event may name, spelled once, with what it
means to people. Like NetBox's ChoiceSet (value, label, colour), an `Action` carries its
value (what is stored), its label (what timelines and pages say), whether it marks a step
that went wrong, and the notification kind it announces (if any).

Each app declares its own actions next to its statuses (this module for the ground floor,
`releases/actions.py`, `notifications/actions.py`); every one lands in one registry, so
`describe(event.action)` reads any stored event, and nothing parses action strings.
"""

from __future__ import annotations

REGISTRY: dict[str, Action] = {}


class Notify:
    """What an action may announce to a team's channels (notifications.events.EventKind
    gives each its label)."""

    BUILD_FAILED = "build_failed"
    AWAITING_APPROVAL = "awaiting_approval"
    DEPLOYED = "deployed"
    ROLLOUT_FAILED = "rollout_failed"
    DRIFT = "drift"
    FREEZE_OVERRIDE = "freeze_override"
    VERIFICATION_FAILED = "verification_failed"
    ROLLED_BACK = "rolled_back"
    JUDGEMENT = "judgement"


class Action(str):
    """An audit action: a string (what is stored) that knows its meaning."""

    label: str
    failed: bool
    notify: str

    def __new__(cls, value: str, label: str, *, failed: bool = False, notify: str = "") -> Action:
        made = super().__new__(cls, value)
        made.label, made.failed, made.notify = label, failed, notify
        REGISTRY[value] = made
        return made

    @property
    def subject(self) -> str:
        """What it happened to: `deployment` of `deployment.succeeded`."""
        return self.partition(".")[0]


def describe(value: str) -> Action:
    """The action an event names; one not declared (an admin change of some model) reads as
    its own value."""
    found = REGISTRY.get(value)
    if found is None:
        found = str.__new__(Action, value)
        found.label, found.failed, found.notify = value, value.endswith("failed"), ""
    return found


def model_change(model_name: str, verb: str) -> Action:
    """An admin's create, change or delete of any model (`service.change`)."""
    value = f"{model_name}.{verb}"
    return REGISTRY.get(value) or Action(value, f"{model_name.capitalize()} {verb}d in the admin")


class Auth:
    LOGIN = Action("auth.login", "Signed in")
    LOGOUT = Action("auth.logout", "Signed out")
    LOGIN_FAILED = Action("auth.login_failed", "Sign-in failed", failed=True)


class Access:
    MEMBERSHIP_CREATE = Action("membership.create", "Role granted")
    MEMBERSHIP_CHANGE = Action("membership.change", "Role changed")
    MEMBERSHIP_DELETE = Action("membership.delete", "Role removed")
    TOKEN_ISSUE = Action("api_token.issue", "API token issued")
    TOKEN_REVOKE = Action("api_token.revoke", "API token revoked")
    OFFBOARD = Action("account.offboard", "Gone from the directory: account closed")
    ACCESS_END = Action("account.access_end", "No role left: sessions and tokens ended")
    SUPERUSER_GRANT = Action("user.superuser_grant", "Made a platform admin")


class Catalog:
    TARGET_CREATE = Action("deploymenttarget.create", "Deployment target created")
    TARGET_CHANGE = Action("deploymenttarget.change", "Deployment target changed")
    TARGET_ADOPT = Action("deploymenttarget.adopt", "Helm release adopted by a platform admin")
    SERVICE_DECLARED = Action("service.declared", "Service declared in its repository")
    SERVICE_REDECLARED = Action("service.redeclared", "Service changed in its repository")
    SERVICE_ORPHANED = Action(
        "service.orphaned", "Service orphaned: its slipway.yaml is gone", failed=True
    )
    SERVICE_RESTORED = Action("service.restored", "Service declared again in its repository")
    FREEZE_CREATE = Action("freeze.create", "Freeze made")
    FREEZE_DELETE = Action("freeze.delete", "Freeze ended")
    FREEZE_OVERRIDE = Action("freeze.override", "Freeze overridden", notify=Notify.FREEZE_OVERRIDE)
