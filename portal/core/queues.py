"""Celery queue and task names, in one place: tasks declare themselves with them, workflow
modules send tasks by them (never importing the tasks), and beat schedules them.

Queues: builds and deploys run apart so a slow Jenkins never holds up a rollout, and small
housekeeping tasks never wait behind either. Watching a rollout (minutes of waiting on the
cluster) has its own queue, so the helm upgrade of a build that just finished never waits
behind rollouts being watched. Notifications wait on other people's servers: a slow chat
robot or webhook must never hold up resuming stale runs, approval expiry or audit
anchoring (on `default`). A worker started without `-Q` takes every queue in ALL.
"""

DEFAULT = "default"
BUILDS = "builds"
DEPLOYS = "deploys"
ROLLOUTS = "rollouts"
NOTIFICATIONS = "notifications"
ALL = (DEFAULT, BUILDS, DEPLOYS, ROLLOUTS, NOTIFICATIONS)


class Task:
    """Every task's name (the app it belongs to, a dot, what it does)."""

    # the release engine
    ADVANCE_RELEASE = "releases.advance"
    ADVANCE_DEPLOYMENT = "releases.deploy"
    START_WAITING = "releases.start_waiting"
    RENDER_PREVIEW = "releases.render_preview"
    VERIFY = "releases.verify"
    REMOVE_CANARY = "releases.remove_canary"
    CHANGE_TELL = "releases.change_tell"
    ADVANCE_TRAIN = "releases.advance_train"
    RESUME_STALE = "releases.resume_stale"
    CHECK_DRIFT = "releases.check_drift"
    CHECK_DRIFT_ALL = "releases.check_drift_all"
    # notifications
    NOTIFY_FAN_OUT = "notifications.fan_out"
    NOTIFY_DELIVER = "notifications.deliver"
    # the ground floor
    PING = "portal.ping"
    FORGET_IDEMPOTENCY_KEYS = "portal.forget_idempotency_keys"
    VERIFY_AUDIT = "portal.verify_audit"
    AUDIT_ANCHOR = "portal.audit_anchor"
    LDAP_OFFBOARDING = "portal.ldap_offboarding"
    CATALOG_SYNC = "portal.catalog_sync"
    CATALOG_SYNC_ALL = "portal.catalog_sync_all"
