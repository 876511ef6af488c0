"""Celery queue names, in one place: builds and deploys run apart so a slow Jenkins
never holds up a rollout, and small housekeeping tasks never wait behind either."""

DEFAULT = "default"
BUILDS = "builds"
DEPLOYS = "deploys"
ALL = (DEFAULT, BUILDS, DEPLOYS)
