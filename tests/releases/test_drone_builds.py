"""Builds through Drone, end to end with a real worker: the Drone emulator builds, the
release log gets each step's lines, the digest comes from the SLIPWAY_IMAGE line, a failed
step says where, a cancel stops the build, an outage is retried; then (on the test
cluster) the Drone-built digest goes to Beta and the same digest to Prod."""

import hashlib
import time

import pytest

from devtools.drone_emulator import serve
from portal.audit.chain import Actor
from portal.catalog.models import DroneServer
from releases.builds import release_cancel, release_create, release_log_text
from releases.models import Release
from tests.support.deploy import deploy, image_in
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]
TOKEN = "drone-test-token"


@pytest.fixture
def drone():
    server, emulator = serve(token=TOKEN)
    yield f"http://127.0.0.1:{server.server_address[1]}", emulator
    server.shutdown()


def _drone_service(service, url: str):
    service.build_backend = "drone"
    service.drone_server = DroneServer.objects.create(name="drone", url=url, token=TOKEN)
    service.drone_repository = "shop/app"
    service.jenkins_server = None
    service.save()
    return service


def _ended(release: Release, timeout: float = 30) -> Release:
    def done():
        release.refresh_from_db()
        return release.status in ("built", "failed", "cancelled")

    wait_until(done, timeout, f"release #{release.pk} ending ({release.progress})")
    return release


@pytest.fixture
def service(drone):
    from tests.factories import service_path

    return _drone_service(
        service_path(image_repository="registry.local/shop/app").service, drone[0]
    )


def test_a_drone_build_gives_the_release_its_digest_and_log(service, drone):
    release = _ended(release_create(service=service, ref="v1.4.0", actor=Actor.system("t")))
    assert release.status == "built", release.status_reason
    expected = "sha256:" + hashlib.sha256(b"shop/app@v1.4.0").hexdigest()
    assert release.image == f"registry.local/shop/app@{expected}"
    assert (release.build_backend, release.build_number) == ("drone", 1)
    assert release.build_url == f"{drone[0]}/shop/app/1"
    assert release.commit_sha == hashlib.sha1(b"shop/app:v1.4.0").hexdigest()
    log = release_log_text(release)
    assert log.index("--- step clone\n") < log.index("--- step publish\n")
    assert log.count("SLIPWAY_IMAGE=") == 1  # streamed or stored, each line once
    assert f"SLIPWAY_IMAGE=registry.local/shop/app@{expected}" in log
    assert release.log_offset == len(log.encode())
    [build] = drone[1].builds["shop/app"]
    assert build.params["SLIPWAY_RELEASE"] == str(release.pk)


def test_a_running_steps_lines_reach_the_release_log_while_it_runs(service, drone):
    lines = [f"compiling module {n}" for n in range(1, 7)]
    drone[1].repos["shop/app"] = {"steps": [
        {"name": "compile", "seconds": 6, "lines": lines},
        {"name": "publish", "seconds": 0.3, "lines": ["SLIPWAY_IMAGE={image}@{digest}"]},
    ]}  # fmt: skip
    release = release_create(service=service, ref="v5", actor=Actor.system("t"))

    def first_line_in():
        return "compiling module 1" in release_log_text(release)

    wait_until(first_line_in, 15, "the running step's first line in the log")
    [build] = drone[1].builds["shop/app"]
    assert build.step_status(0, time.time()) == "running"  # still compiling
    assert _ended(release).status == "built"
    log = release_log_text(release)
    assert [log.count(line + "\n") for line in lines] == [1] * 6  # each line once, in order
    assert log.index("compiling module 1") < log.index("compiling module 6")


def test_a_failed_step_says_where_and_a_cancel_stops_the_build(service, drone):
    failed = _ended(release_create(service=service, ref="fail-7", actor=Actor.system("t")))
    assert failed.status == "failed"
    assert failed.status_reason.startswith("Drone build #1 failed at step test (exit code 1).")
    assert "FAIL  TestCheckout" in failed.status_reason

    drone[1].repos["shop/app"] = {"steps": [{"name": "slow", "seconds": 30, "lines": ["…"]}]}
    slow = release_create(service=service, ref="v2", actor=Actor.system("t"))
    wait_until(lambda: Release.objects.get(pk=slow.pk).status == "building", 15, "building")
    release_cancel(release=Release.objects.get(pk=slow.pk), actor=Actor.system("t"))
    assert _ended(slow).status == "cancelled"
    assert drone[1].builds["shop/app"][-1].killed_at is not None


def test_drone_unavailable_for_a_while_is_retried(service, drone):
    drone[1].unavailable = 3
    release = _ended(release_create(service=service, ref="v3", actor=Actor.system("t")))
    assert release.status == "built", release.status_reason
    assert len(drone[1].builds["shop/app"]) == 1  # built once, never twice


def test_without_a_slipway_image_line_the_digest_comes_from_the_registry_by_commit_tag(
    service, drone, docker_registry
):
    from portal.catalog.models import Registry
    from tests.support.registry import PASSWORD, USERNAME

    service.image_repository = f"{docker_registry.host}/shop/app"
    service.registry = Registry.objects.create(
        name="harbor", url=docker_registry.url, username=USERNAME, password=PASSWORD,
        ca_certificate=docker_registry.ca_pem, timeout_seconds=3,
    )  # fmt: skip
    service.save()
    drone[1].repos["shop/app"] = {"steps": [
        {"name": "publish", "seconds": 0.2, "lines": ["+ docker push {image}:{sha7}"]},
    ]}  # fmt: skip
    commit = hashlib.sha1(b"shop/app:v6").hexdigest()  # what the emulator builds for ref v6
    pushed = docker_registry.push("shop/app", commit[:12], "built from v6")
    docker_registry.push("shop/app", "latest", "something else")
    release = _ended(release_create(service=service, ref="v6", actor=Actor.system("t")))
    assert release.status == "built", release.status_reason
    assert release.image == f"{docker_registry.host}/shop/app@{pushed}"
    assert release.commit_sha == commit
    assert f"shop/app:{commit[:12]} is {pushed} in harbor" in release_log_text(release)

    # Nothing tagged with the commit: no digest, no release (never a tag such as latest).
    missing = _ended(release_create(service=service, ref="v7", actor=Actor.system("t")))
    assert missing.status == "failed"
    seven = hashlib.sha1(b"shop/app:v7").hexdigest()
    assert missing.status_reason.startswith(
        f"Drone build #2 succeeded but printed no SLIPWAY_IMAGE=repo@sha256:… line, and "
        f"registry harbor has no {service.image_repository} tagged with commit {seven[:12]}"
    ), missing.status_reason


@pytest.mark.e2e
def test_a_drone_built_digest_goes_to_beta_then_the_same_to_prod(world, drone):
    _drone_service(world["service"], drone[0])
    world["service"].drone_repository = "demo/app"
    world["service"].save()
    release = _ended(release_create(service=world["service"], ref="v9", actor=Actor.system("t")))
    assert release.status == "built", release.status_reason
    assert deploy(world, release, "beta").status == "succeeded"
    prod = deploy(world, release, "prod", kind="promote")
    assert prod.status == "succeeded", prod.status_reason
    assert image_in(world, "prod") == image_in(world, "beta") == release.image
