"""Session fixtures for the e2e tier: a real kube-apiserver + etcd, helm, the simulator."""

from __future__ import annotations

import pytest

from devtools.kube.binaries import HELM, find
from devtools.kube.controlplane import ControlPlane
from devtools.kube.simulator import RolloutSimulator


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory):
    """A running control plane (binaries built on a cache miss) with the simulator."""
    plane = ControlPlane(tmp_path_factory.mktemp("kube")).start()
    simulator = RolloutSimulator(str(plane.kubeconfig_path), delay_seconds=1.0).start()
    yield plane
    simulator.stop()
    plane.stop()


@pytest.fixture(scope="session")
def helm_binary() -> str:
    """helm for this session (`make test` builds it before pytest starts); the test
    process's own Helm adapter uses it too, through settings.SLIPWAY_HELM."""
    from django.conf import settings

    path = str(find(HELM))
    settings.SLIPWAY_HELM = path
    return path
