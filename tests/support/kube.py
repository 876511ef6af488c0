"""Session fixtures for the e2e tier: a real control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler) with kwok's nodes, and helm."""

from __future__ import annotations

import pytest

from devtools.kube.binaries import HELM, find
from devtools.kube.controlplane import ControlPlane


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory):
    """A running cluster (binaries built on a cache miss): two kwok nodes, so a rollout
    spreads its pods as a real one does."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube"), nodes=2, name="cluster-a").start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube_cluster_b(tmp_path_factory):
    """A second cluster of its own (etcd, control plane, kwok), for an environment spread
    over two; started only by the tests that ask for it."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube-b"), nodes=1, name="cluster-b").start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def helm_binary() -> str:
    """helm for this session (`make test` builds it before pytest starts); the test
    process's own Helm adapter uses it too, through settings.SLIPWAY_HELM."""
    from django.conf import settings

    path = str(find(HELM))
    settings.SLIPWAY_HELM = path
    return path
