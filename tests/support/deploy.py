"""The e2e world of deployments: a service with Beta and Prod on the test cluster, in
namespaces of its own, and helpers to deploy and to read what the cluster runs."""

from __future__ import annotations

import hashlib

import pytest
from kubernetes import client, config

from portal.audit.chain import Actor
from portal.catalog.models import DeploymentTarget
from releases.choices import DEPLOYMENT_OPEN
from releases.deployments import deployment_start
from releases.models import Deployment, Release, TargetRollout
from tests.factories import BuiltReleaseFactory, UserFactory, service_path
from tests.support.waiting import wait_until


@pytest.fixture
def world(kube_cluster, request):
    """A service with Beta and Prod targets on the test cluster, in fresh namespaces."""
    suffix = hashlib.sha1(request.node.name.encode()).hexdigest()[:8]
    path = service_path(
        namespace_suffix=f"-{suffix}",
        default_values={"env": {"FROM": "service"}},
        cluster={"kubeconfig": kube_cluster.kubeconfig()},
        beta={"auto_rollback": True, "rollout_timeout_seconds": 60},
        prod={"requires_approval": False, "rollout_timeout_seconds": 60},
    )
    DeploymentTarget.objects.filter(environment=path.prod).update(values={"replicaCount": 2})
    api = config.new_client_from_config(str(kube_cluster.kubeconfig_path))
    return {
        "service": path.service,
        "beta": path.beta,
        "prod": path.prod,
        "jenkins": path.jenkins,
        "cluster": path.cluster,
        "user": UserFactory(username="lead"),
        "apps": client.AppsV1Api(api),
        "core": client.CoreV1Api(api),
        "suffix": suffix,
    }


def built_release(world, n: int) -> Release:
    return BuiltReleaseFactory(service=world["service"], ref=f"v{n}", build_number=n)


def finished(deployment: Deployment, timeout: float = 60) -> Deployment:
    """Wait for the deployment to end; return it fresh."""

    def done():
        deployment.refresh_from_db()
        return deployment.status not in DEPLOYMENT_OPEN

    wait_until(done, timeout, f"deployment #{deployment.pk} ending ({deployment.progress})")
    return deployment


def rollout_of(deployment: Deployment) -> TargetRollout:
    """The one rollout of a deployment to a one-cluster environment."""
    [rollout] = deployment.rollouts.all()
    return rollout


def deploy(world, release, env, kind="deploy", timeout=60) -> Deployment:
    deployment = deployment_start(
        release=release,
        environment=world[env],
        actor=Actor.for_user(world["user"]),
        user=world["user"],
        kind=kind,
    )
    return finished(deployment, timeout)


def namespace(world, env: str) -> str:
    return f"{env}-{world['suffix']}"


def image_in(world, env) -> str:
    deployment = world["apps"].read_namespaced_deployment("app", namespace(world, env))
    return deployment.spec.template.spec.containers[0].image


def pod_images(world, env) -> list[str]:
    """The distinct images the Ready pods of the app run, as the cluster reports them."""
    pods = world["core"].list_namespaced_pod(namespace(world, env)).items
    return sorted(
        {
            status.image_id or status.image
            for pod in pods
            if pod.metadata.deletion_timestamp is None
            for status in pod.status.container_statuses or []
            if status.ready
        }
    )
