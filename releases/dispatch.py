"""Send the release engine's tasks, by name and after the transaction commits.

Workflow modules call these instead of importing releases.tasks, so tasks and workflow
never import each other. Tasks carry ids and a run token only, never a secret.
"""

from __future__ import annotations

from celery import current_app
from django.db import transaction

from portal.core import queues
from portal.core.logs import task_headers
from portal.core.queues import Task
from releases.choices import DEPLOYMENT_WATCHING


def _send_on_commit(name: str, args: tuple, queue: str, countdown: float = 0) -> None:
    headers = task_headers()  # the request id goes along, and on to the next task
    transaction.on_commit(
        lambda: current_app.send_task(
            name, args=args, queue=queue, countdown=countdown, headers=headers
        )
    )


def advance_release(release, countdown: float = 0) -> None:
    """Run the release's next build step (with its current run token)."""
    _send_on_commit(
        Task.ADVANCE_RELEASE, (release.pk, str(release.run_token)), queues.BUILDS, countdown
    )


def advance_deployment(deployment, countdown: float = 0) -> None:
    """Run the deployment's next step (with its current run token): watching a rollout or
    a canary on the rollouts queue, the rest (checks, helm) on the deploys queue."""
    queue = queues.ROLLOUTS if deployment.status in DEPLOYMENT_WATCHING else queues.DEPLOYS
    _send_on_commit(
        Task.ADVANCE_DEPLOYMENT, (deployment.pk, str(deployment.run_token)), queue, countdown
    )


def start_waiting(service_id: int, environment_id: int) -> None:
    """An environment may have freed up: start what waits there for it."""
    _send_on_commit(Task.START_WAITING, (service_id, environment_id), queues.DEPLOYS)


def render_preview(release_id: int, environment_id: int) -> None:
    """Render what a promotion would change (helm template), for the confirmation."""
    _send_on_commit(Task.RENDER_PREVIEW, (release_id, environment_id), queues.DEPLOYS)


def verify(run, countdown: float = 0) -> None:
    """Take a verification run's measurements that are due (with its current run token);
    it waits on Prometheus, so it runs beside the rollout watching."""
    _send_on_commit(Task.VERIFY, (run.pk, str(run.run_token)), queues.ROLLOUTS, countdown)


def advance_train(train) -> None:
    """Run a release train's next step (start the next release, or end it)."""
    _send_on_commit(Task.ADVANCE_TRAIN, (train.pk,), queues.DEPLOYS)


def advance_train_of(deployment) -> None:
    """A train's deployment ended: its train goes on (or stops)."""
    _send_on_commit(Task.ADVANCE_TRAIN, (deployment.train_member.train_id,), queues.DEPLOYS)


def change_tell(deployment, status: str) -> None:
    """Tell the deployment's change request what happened (retried while unreachable)."""
    _send_on_commit(Task.CHANGE_TELL, (deployment.pk, status), queues.NOTIFICATIONS)


def remove_canary(deployment) -> None:
    """A deployment ended with a canary still installed: set it to 0 and remove it."""
    _send_on_commit(Task.REMOVE_CANARY, (deployment.pk,), queues.DEPLOYS)
