"""The Drone emulator against Drone's own shapes (recorded from drone/drone v2.0.4's
core/*.go JSON tags in drone_shapes.json), and Slipway's Drone door against the emulator:
start, follow stages and steps, read step logs, find a build by its params, cancel,
refusals and outages."""

import json
import time
from pathlib import Path

import pytest
import requests

from devtools.drone_emulator import serve
from doors.drone import (
    CORRELATION_PARAMETER,
    DroneAuthFailed,
    DroneClient,
    DroneUnavailable,
    image_from_log,
)

SHAPES = json.loads((Path(__file__).parent / "drone_shapes.json").read_text())
TOKEN = "drone-test-token"


@pytest.fixture
def drone():
    server, emulator = serve(token=TOKEN)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield url, emulator
    server.shutdown()


def _conforms(body: dict, shape: str) -> None:
    keys, spec = set(body), SHAPES[shape]
    assert set(spec["required"]) <= keys, f"{shape} lacks {set(spec['required']) - keys}"
    assert keys <= set(spec["required"]) | set(spec["omitempty"]), (
        f"{shape} has keys Drone does not: {keys - set(spec['required']) - set(spec['omitempty'])}"
    )


def _wait(client, number, status=("success", "failure", "killed")):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        build = client.build("shop/storefront", number)
        if build.status in status:
            return build
        time.sleep(0.1)
    raise AssertionError(f"build {number} still {build.status}")


def test_the_emulators_answers_have_drones_shapes(drone):
    url, _ = drone
    auth = {"Authorization": f"Bearer {TOKEN}"}
    started = requests.post(
        f"{url}/api/repos/shop/storefront/builds", params={"branch": "main", "X": "1"}, headers=auth
    )
    assert started.status_code == 200
    _conforms(started.json(), "build")
    assert started.json()["params"] == {"X": "1"}  # branch and commit are not params
    time.sleep(1.5)
    found = requests.get(f"{url}/api/repos/shop/storefront/builds/1", headers=auth).json()
    _conforms(found, "build")
    for stage in found["stages"]:
        _conforms(stage, "stage")
        for step in stage["steps"]:
            _conforms(step, "step")
    lines = requests.get(f"{url}/api/repos/shop/storefront/builds/1/logs/1/1", headers=auth).json()
    assert lines and all(_conforms(line, "line") is None for line in lines)
    listed = requests.get(f"{url}/api/repos/shop/storefront/builds", headers=auth).json()
    _conforms(listed[0], "build")
    assert requests.get(f"{url}/api/repos/shop/storefront/builds/1").status_code == 401
    assert (
        requests.get(f"{url}/api/repos/shop/storefront/builds/9", headers=auth).status_code == 404
    )


def test_the_door_builds_reads_logs_finds_and_cancels(drone):
    url, emulator = drone
    client = DroneClient(url, TOKEN)
    build = client.trigger(
        "shop/storefront", branch="v1.2.0",
        params={CORRELATION_PARAMETER: "41", "IMAGE_REPOSITORY": "registry.local/shop/storefront"},
    )  # fmt: skip
    assert build.number == 1 and build.running
    assert client.step_log("shop/storefront", 1, 1, 3) is None  # not stored yet
    done = _wait(client, 1)
    assert done.status == "success" and [s.name for s in done.steps] == ["clone", "test", "publish"]
    published = "".join(client.step_log("shop/storefront", 1, 1, 3))
    image = image_from_log(published)
    assert image.repository == "registry.local/shop/storefront"
    assert image.digest.startswith("sha256:") and len(image.digest) == 71
    assert client.find_build("shop/storefront", CORRELATION_PARAMETER, "41").number == 1
    assert client.find_build("shop/storefront", CORRELATION_PARAMETER, "42") is None

    failing = client.trigger("shop/storefront", branch="fail-1", params={})
    failed = _wait(client, failing.number)
    assert failed.status == "failure"
    assert [(s.name, s.status, s.exit_code) for s in failed.steps] == [
        ("clone", "success", 0), ("test", "failure", 1), ("publish", "skipped", 0),
    ]  # fmt: skip

    slow = client.trigger("shop/storefront", branch="main", params={})
    client.cancel("shop/storefront", slow.number)
    assert _wait(client, slow.number).status == "killed"

    emulator.unavailable = 1
    with pytest.raises(DroneUnavailable):
        client.build("shop/storefront", 1)
    assert client.build("shop/storefront", 1).status == "success"
    with pytest.raises(DroneAuthFailed):
        DroneClient(url, "wrong").build("shop/storefront", 1)
