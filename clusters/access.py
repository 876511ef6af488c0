"""Adapters for a registered cluster: the kubeconfig is decrypted here, inside the worker,
and handed to helm (as a 0600 temp file) or the Kubernetes client; never to a task."""

from __future__ import annotations

from collections.abc import Callable

from clusters.helm import Helm
from clusters.models import Cluster
from clusters.rollout import RolloutWatcher


def cluster_helm(cluster: Cluster, before_call: Callable[[], None] | None = None) -> Helm:
    return Helm(cluster.kubeconfig.reveal(), cluster.context, before_call=before_call)


def cluster_watcher(
    cluster: Cluster, before_call: Callable[[], None] | None = None
) -> RolloutWatcher:
    return RolloutWatcher(cluster.kubeconfig.reveal(), cluster.context, before_call=before_call)
