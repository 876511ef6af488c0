"""Session fixtures for the e2e tier: a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) with kwok's nodes, and helm."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.kube.binaries import ALL, HELM, ensure_all, find
from devtools.kube.controlplane import ControlPlane


def _waiting(config):
    """Say on the terminal (through pytest's capture) that the run waits for the build."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(tail: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n[kube] waiting for the background build: {tail or '…'}", flush=True)

    return say


_READY: set[str] = set()


def wait_for_binaries(item) -> None:
    """Before a test that needs the cluster's binaries (or helm) starts, and outside its
    time limit: wait for `make test`'s background build of them, once per session."""
    names = getattr(item, "fixturenames", ())
    wanted = ALL if "kube_binaries" in names else (HELM,) if "helm_binary" in names else ()
    for binary in wanted:
        if binary.name not in _READY:
            find(binary, on_wait=_waiting(item.config))
            _READY.add(binary.name)


@pytest.fixture(scope="session")
def kube_binaries(request) -> None:
    """Every binary the clusters need. `make test` builds them in the background while the
    tests without a cluster run (tests/conftest.py puts those with one last): the first
    that needs one waits here, and says so every 30 s."""
    ensure_all(on_wait=_waiting(request.config))


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory, kube_binaries):
    """A running cluster (binaries built on a cache miss): two kwok nodes, so a rollout
    spreads its pods as a real one does."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube"), nodes=2, name="cluster-a").start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube_cluster_b(tmp_path_factory, kube_binaries):
    """A second cluster of its own (etcd, control plane, kwok), for an environment spread
    over two; started only by the tests that ask for it."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube-b"), nodes=1, name="cluster-b").start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def helm_binary(request) -> str:
    """helm for this session (the first binary `make test` builds; waited for if need be); the test
    process's own Helm adapter uses it too, through settings.SLIPWAY_HELM."""
    from django.conf import settings

    path = str(find(HELM, on_wait=_waiting(request.config)))
    settings.SLIPWAY_HELM = path
    return path


def recording_helm(directory: Path, helm: str, record: str = "$*") -> tuple[Path, Path]:
    """A helm that appends `record` (a shell string: `$*` its arguments, `$GOGC` …) to a
    file, one line per run, then runs the real `helm`: which runs a test made, and how.
    Returns the executable and the file."""
    calls = directory / "helm-calls"
    executable = directory / "helm"
    executable.write_text(f'#!/bin/sh\necho "{record}" >> "{calls}"\nexec "{helm}" "$@"\n')
    executable.chmod(0o755)
    return executable, calls
