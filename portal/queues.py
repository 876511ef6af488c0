"""Celery queue names, in one place: builds and deploys run apart so a slow Jenkins
never holds up a rollout, and small housekeeping tasks never wait behind either.
Watching a rollout (minutes of waiting on the cluster) has its own queue, so the helm
upgrade of a build that just finished never waits behind rollouts being watched."""

DEFAULT = "default"
BUILDS = "builds"
DEPLOYS = "deploys"
ROLLOUTS = "rollouts"
# Notifications wait on other people's servers: a slow chat robot or webhook must never
# hold up resuming stale runs, approval expiry or audit anchoring (on `default`).
NOTIFICATIONS = "notifications"
ALL = (DEFAULT, BUILDS, DEPLOYS, ROLLOUTS, NOTIFICATIONS)
