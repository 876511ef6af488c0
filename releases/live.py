"""What the release engine tells open pages (portal/core/live.py): a release or one of
its deployments moved, its console grew, or a decision someone may owe changed."""

from __future__ import annotations

from portal.core.live import APPROVALS, CHANGES, live_publish, log_channel


def live_changed(*, service_id: int, release_id: int, deployment_id: int | None = None) -> None:
    """A release (and maybe one of its deployments) moved: its pages and the dashboard
    row of its service fetch again."""
    topics = [f"service-{service_id}", f"release-{release_id}"]
    if deployment_id is not None:
        topics.append(_deployment_topic(deployment_id))
    live_publish(CHANGES, topics)


def live_deployment_detail(*, deployment_id: int) -> None:
    """Something shown inside a deployment changed (a rollout's progress, a measurement):
    only the pages that show it fetch again."""
    live_publish(CHANGES, [_deployment_topic(deployment_id)])


def _deployment_topic(deployment_id: int) -> str:
    return f"deployment-{deployment_id}"


def live_log_grew(*, release_id: int) -> None:
    live_publish(log_channel(release_id), [f"log-{release_id}"])


def live_decisions_changed() -> None:
    """Someone's count of requests, trains or verdicts waiting may have changed."""
    live_publish(APPROVALS, ["approvals"])
