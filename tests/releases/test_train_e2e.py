"""A release train end to end: a real worker promotes three services to Prod on the test
cluster in order; the second one's rollout crash-loops, so the train stops there and the
third never reaches the cluster. Then a withdrawn request's change is cancelled by the
worker in the change system."""

import pytest
from kubernetes.client.exceptions import ApiException

from devtools.change_receiver import serve
from portal.access.choices import Role
from portal.audit.chain import Actor
from portal.catalog.models import DeploymentTarget
from releases.deployments import deployment_start, deployment_withdraw
from releases.models import ChangeSystem, Deployment, ReleaseTrain
from releases.trains import train_create
from tests.factories import BuiltReleaseFactory, ServiceFactory, TeamFactory, allow, member
from tests.support.deploy import deploy, namespace
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("celery_worker"),
]


def _service(world, slug: str):
    service = ServiceFactory(slug=slug, name=slug.title(), team=TeamFactory(slug=slug, name=slug))
    for environment in (world["beta"], world["prod"]):
        allow(
            DeploymentTarget.objects.create(
                service=service,
                environment=environment,
                cluster=world["cluster"],
                namespace=namespace(world, environment.slug),
                helm_release_name=slug,
            )
        )
    return service


def test_a_train_stops_at_its_second_service_and_the_third_never_deploys(world):
    services = [world["service"], _service(world, "api"), _service(world, "web")]
    for service in services:
        member(service.team, world["user"].username, Role.DEVELOPER)
    releases = []
    for service in services:
        release = BuiltReleaseFactory(service=service, ref=f"{service.slug}-1")
        assert deploy(world, release, "beta").status == "succeeded"
        releases.append(release)
    DeploymentTarget.objects.filter(service=services[1], environment=world["prod"]).update(
        values={"simulate": "crashloop", "progressDeadlineSeconds": 6}
    )
    # Prod needs no approval in this world: the train starts at once.
    train = train_create(
        name="e2e", environment=world["prod"], releases=[r.pk for r in releases],
        user=world["user"], actor=Actor.for_user(world["user"]),
    )  # fmt: skip

    def ended():
        train.refresh_from_db()
        return train.status not in ("awaiting_approval", "running")

    wait_until(ended, 120, "the train ending")
    assert train.status == "failed", train.status_reason
    assert train.status_reason.startswith("Stopped at Api (2 of 3): ")
    assert "CrashLoopBackOff" in train.status_reason
    members = list(train.members.order_by("position"))
    assert [m.status for m in members] == ["succeeded", "failed", "not_started"]
    first = members[0].deployment
    assert (first.status, first.release_id) == ("succeeded", releases[0].pk)
    assert members[1].deployment.finished_at >= first.finished_at
    assert not Deployment.objects.filter(service=services[2], environment=world["prod"]).exists()
    with pytest.raises(ApiException) as absent:
        world["apps"].read_namespaced_deployment("web", namespace(world, "prod"))
    assert absent.value.status == 404
    assert ReleaseTrain.objects.get(pk=train.pk).finished_at is not None


def test_the_worker_cancels_a_withdrawn_requests_change(world):
    server, receiver = serve(user="slipway", password="pw")
    try:
        world["prod"].requires_approval = True
        world["prod"].save()
        ChangeSystem.objects.create(
            environment=world["prod"], name="SN", kind="servicenow",
            url=f"http://127.0.0.1:{server.server_address[1]}", username="slipway", secret="pw",
        )  # fmt: skip
        release = BuiltReleaseFactory(service=world["service"], ref="v1")
        assert deploy(world, release, "beta").status == "succeeded"
        actor = Actor.for_user(world["user"])
        waiting = deployment_start(
            release=release, environment=world["prod"], kind="promote", user=world["user"],
            actor=actor,
        )  # fmt: skip
        assert waiting.change_ticket.number == "CHG0030001"
        deployment_withdraw(deployment=waiting, user=world["user"], actor=actor)

        def cancelled():
            [change] = receiver.changes.values()
            return change["state"] == "4"

        wait_until(cancelled, 30, "the change cancelled in the change system")
        waiting.change_ticket.refresh_from_db()
        assert (waiting.change_ticket.outcome, waiting.change_ticket.state) == (
            "canceled",
            "canceled",
        )
    finally:
        server.shutdown()
