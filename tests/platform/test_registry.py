"""Against a real registry (Debian's docker-registry, TLS + htpasswd): a pushed digest
deploys; a deleted or never-pushed one is refused with the message; wrong credentials fail
clearly; a stopped registry is retried, then the deployment fails with the reason."""

from __future__ import annotations

import pytest

from doors.registry import (
    ImageNotFound,
    RegistryError,
    RegistryUnreachable,
    image_check,
    image_digest_by_tag,
)
from portal.audit.chain import Actor
from portal.catalog.models import Registry
from portal.catalog.registries import registry_access
from releases.deployments import deployment_start
from releases.errors import ReleaseRefused
from tests.factories import BuiltReleaseFactory, digest_for, succeeded_in
from tests.support.deploy import deploy, rollout_of
from tests.support.registry import PASSWORD, USERNAME

REPOSITORY = "team/app"


def _registry(local, **overrides) -> Registry:
    fields = {"name": "harbor", "url": local.url, "username": USERNAME, "password": PASSWORD,
              "ca_certificate": local.ca_pem, "timeout_seconds": 3} | overrides  # fmt: skip
    return Registry.objects.create(**fields)


@pytest.mark.django_db
def test_the_adapter_finds_pushed_digests_and_names_what_is_wrong(docker_registry):
    registry = _registry(docker_registry)
    image = f"{docker_registry.host}/{REPOSITORY}"
    pushed = docker_registry.push(REPOSITORY, "v1", "layer one")
    image_check(registry=registry_access(registry), image_repository=image, digest=pushed)

    never = digest_for("never pushed")
    with pytest.raises(ImageNotFound) as missing:
        image_check(registry=registry_access(registry), image_repository=image, digest=never)
    assert str(missing.value) == (
        f"image {image}@{never} not found in registry harbor ({docker_registry.url})"
    )

    gone = docker_registry.push(REPOSITORY, "v2", "layer two")
    docker_registry.delete(REPOSITORY, gone)
    with pytest.raises(ImageNotFound):
        image_check(registry=registry_access(registry), image_repository=image, digest=gone)

    wrong = _registry(docker_registry, name="wrong", password="not-it")
    with pytest.raises(RegistryError, match="refused Slipway's credentials \\(HTTP 401\\)") as e:
        image_check(registry=registry_access(wrong), image_repository=image, digest=pushed)
    assert not e.value.retryable and "not-it" not in str(e.value)

    untrusted = _registry(docker_registry, name="untrusted", ca_certificate="")
    with pytest.raises(RegistryError, match="TLS certificate not trusted"):
        image_check(registry=registry_access(untrusted), image_repository=image, digest=pushed)


@pytest.mark.django_db
def test_a_tag_is_read_as_the_digest_it_names_now(docker_registry):
    access = registry_access(_registry(docker_registry))
    image = f"{docker_registry.host}/{REPOSITORY}"
    first = docker_registry.push(REPOSITORY, "moving", "layer of the first push")
    assert image_digest_by_tag(registry=access, image_repository=image, tag="moving") == first
    second = docker_registry.push(REPOSITORY, "moving", "layer of the second push")
    assert second != first
    assert image_digest_by_tag(registry=access, image_repository=image, tag="moving") == second
    with pytest.raises(ImageNotFound, match=f"image {image}:no-such-tag not found"):
        image_digest_by_tag(registry=access, image_repository=image, tag="no-such-tag")


@pytest.mark.django_db
def test_a_registry_that_does_not_answer_is_retryable(docker_registry):
    registry = _registry(docker_registry, url="https://127.0.0.1:9")  # nothing listens
    with pytest.raises(RegistryUnreachable, match="does not answer") as e:
        image_check(
            registry=registry_access(registry), image_repository="r.test/a", digest=digest_for("x")
        )
    assert e.value.retryable


def _release(world, local, digest: str, n: int):
    return BuiltReleaseFactory(
        service=world["service"],
        ref=f"v{n}",
        image_repository=f"{local.host}/{REPOSITORY}",
        image_digest=digest,
    )


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_deployments_check_the_registry_first(world, docker_registry, celery_worker):
    service = world["service"]
    service.registry = _registry(docker_registry)
    service.save()

    pushed = docker_registry.push(REPOSITORY, "ok", "deployable")
    deployed = deploy(world, _release(world, docker_registry, pushed, 1), "beta")
    assert deployed.status == "succeeded", deployed.status_reason

    never = digest_for("never pushed to the registry")
    refused = deploy(world, _release(world, docker_registry, never, 2), "beta")
    assert refused.status == "failed"
    assert f"image {docker_registry.host}/{REPOSITORY}@{never} not found in registry harbor" in (
        refused.status_reason
    )
    assert rollout_of(refused).helm_revision is None  # helm never ran

    # A promotion of an image deleted since its build is refused when it is asked for.
    gone = docker_registry.push(REPOSITORY, "gone", "deleted later")
    release = _release(world, docker_registry, gone, 3)
    succeeded_in(release, world["beta"])
    docker_registry.delete(REPOSITORY, gone)
    with pytest.raises(ReleaseRefused, match="not found in registry harbor"):
        deployment_start(
            release=release,
            environment=world["prod"],
            actor=Actor.for_user(world["user"]),
            user=world["user"],
            kind="promote",
        )


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_stopped_registry_is_retried_then_the_deployment_fails_with_the_reason(
    world, docker_registry, celery_worker
):
    service = world["service"]
    service.registry = _registry(docker_registry)
    service.save()
    pushed = docker_registry.push(REPOSITORY, "later", "while it runs")
    docker_registry.stop()
    try:
        failed = deploy(world, _release(world, docker_registry, pushed, 1), "beta")
    finally:
        docker_registry.start()
    assert failed.status == "failed"
    assert "does not answer: could not connect (gave up after 2 retries)" in failed.status_reason
    assert rollout_of(failed).helm_revision is None
