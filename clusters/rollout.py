"""The one door to the Kubernetes API: watch a Helm release's Deployments roll out.

Success is what `kubectl rollout status` calls success: the controller has observed the
new generation and every desired replica is updated and available. Failure is the
Progressing condition's ProgressDeadlineExceeded, or Slipway's own deadline.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from clusters.errors import ClusterMisconfigured, ClusterUnreachable
from clusters.kubeconfig import kubeconfig_dict

RELEASE_ANNOTATION = "meta.helm.sh/release-name"
# How long one request to the Kubernetes API may take.
REQUEST_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class ContainerImage:
    """One container's image in one workload (and, on a cluster, what its pods run)."""

    workload: str  # Kind/name
    container: str
    image: str
    image_ids: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {**asdict(self), "image_ids": list(self.image_ids)}


@dataclass(frozen=True)
class DeploymentProgress:
    name: str
    desired: int
    updated: int
    ready: int
    available: int
    observed: bool
    complete: bool
    failed: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class RolloutProgress:
    deployments: list[DeploymentProgress] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.deployments) and all(d.complete for d in self.deployments)

    @property
    def failed(self) -> bool:
        return any(d.failed for d in self.deployments)

    def summary(self) -> str:
        if not self.deployments:
            return "waiting for the release's Deployments to appear"
        return "; ".join(
            f"{d.name}: {d.updated} updated, {d.ready} ready, {d.available} "
            f"available of {d.desired}"
            for d in self.deployments
        )

    def failure_reason(self) -> str:
        lines = [f"{d.name}: {d.reason}: {d.message}" for d in self.deployments if d.failed]
        if self.events:
            lines.append("Recent events:")
            lines += [f"  {e}" for e in self.events]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "complete": self.complete,
            "failed": self.failed,
            "deployments": [d.__dict__ for d in self.deployments],
            "events": self.events,
        }


def _progress(deployment) -> DeploymentProgress:
    spec, status, meta = deployment.spec, deployment.status, deployment.metadata
    desired = spec.replicas if spec.replicas is not None else 1
    observed = (status.observed_generation or 0) >= (meta.generation or 0)
    conditions = {c.type: c for c in (status.conditions or [])}
    progressing = conditions.get("Progressing")
    failed = bool(observed and progressing and progressing.reason == "ProgressDeadlineExceeded")
    updated = status.updated_replicas or 0
    available = status.available_replicas or 0
    total = status.replicas or 0
    complete = observed and updated >= desired and available >= desired and total <= updated
    condition = progressing if failed else None
    return DeploymentProgress(
        name=meta.name,
        desired=desired,
        updated=updated,
        ready=status.ready_replicas or 0,
        available=available,
        observed=observed,
        complete=complete and not failed,
        failed=failed,
        reason=condition.reason if condition else "",
        message=condition.message if condition else "",
    )


class RolloutWatcher:
    """Reads and watches Deployments of one Helm release in one namespace.

    `before_call` runs before each request to the API (the workflow extends its run's
    lease there)."""

    def __init__(
        self,
        kubeconfig: str,
        context: str = "",
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        before_call=None,
    ) -> None:
        try:
            api_client = config.new_client_from_config_dict(
                kubeconfig_dict(kubeconfig), context=context or None
            )
        except (ValueError, yaml.YAMLError, config.ConfigException) as exc:
            # The message names the problem, never the kubeconfig's content.
            raise ClusterMisconfigured(
                f"the cluster's kubeconfig is unusable ({type(exc).__name__}); "
                "an admin must store a valid one"
            ) from exc
        if api_client.configuration.verify_ssl is False:
            # The operator chose insecure-skip-tls-verify in the kubeconfig; say it once,
            # not on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.request_timeout = request_timeout
        self._before_call = before_call or (lambda: None)

    def _call(self, function, *args, **kwargs):
        self._before_call()
        try:
            return function(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as exc:
            if exc.status in (401, 403):
                raise ClusterUnreachable(
                    f"the cluster refused Slipway's credentials ({exc.status} {exc.reason})"
                ) from exc
            raise ClusterUnreachable(f"Kubernetes API error {exc.status}: {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(f"cluster unreachable: {exc.__class__.__name__}") from exc

    def deployments(self, namespace: str, release: str) -> list:
        found = self._call(self.apps.list_namespaced_deployment, namespace).items
        return [
            d for d in found if (d.metadata.annotations or {}).get(RELEASE_ANNOTATION) == release
        ]

    def events(self, namespace: str, names: list[str], limit: int = 10) -> list[str]:
        events = self._call(self.core.list_namespaced_event, namespace).items
        related = [e for e in events if e.involved_object and e.involved_object.name in names]
        related.sort(
            key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp
        )
        return [f"{e.type} {e.reason}: {e.message}" for e in related[-limit:]]

    def images(self, namespace: str, release: str) -> list[ContainerImage]:
        """The images of the release's Deployments' pod templates as the cluster holds
        them, with the imageID each of their pods reports (none without a kubelet)."""
        found = []
        for deployment in self.deployments(namespace, release):
            selector = (
                (deployment.spec.selector.match_labels or {}) if deployment.spec.selector else {}
            )
            pods = []
            if selector:
                label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
                pods = self._call(
                    self.core.list_namespaced_pod, namespace, label_selector=label_selector
                ).items
            template = deployment.spec.template.spec
            for container in [*(template.init_containers or []), *(template.containers or [])]:
                ids = tuple(
                    sorted(
                        {
                            status.image_id
                            for pod in pods
                            for status in [
                                *((pod.status and pod.status.init_container_statuses) or []),
                                *((pod.status and pod.status.container_statuses) or []),
                            ]
                            if status.name == container.name and status.image_id
                        }
                    )
                )
                found.append(
                    ContainerImage(
                        f"Deployment/{deployment.metadata.name}",
                        container.name,
                        container.image,
                        ids,
                    )
                )
        return found

    def status(self, namespace: str, release: str) -> RolloutProgress:
        found = self.deployments(namespace, release)
        progress = RolloutProgress([_progress(d) for d in found])
        if progress.failed:
            progress = RolloutProgress(
                progress.deployments, self.events(namespace, [d.metadata.name for d in found])
            )
        return progress

    def watch(
        self, namespace: str, release: str, budget_seconds: float, on_progress=None
    ) -> RolloutProgress:
        """Follow watch events for at most `budget_seconds`; return when the rollout is
        complete or failed, or when the budget is spent (the caller decides what next)."""
        progress = self.status(namespace, release)
        if on_progress:
            on_progress(progress)
        if progress.complete or progress.failed:
            return progress
        deadline = time.monotonic() + budget_seconds
        stream = watch.Watch()
        while time.monotonic() < deadline:
            remaining = max(1, int(deadline - time.monotonic()))
            try:
                for _event in stream.stream(
                    self.apps.list_namespaced_deployment,
                    namespace,
                    timeout_seconds=remaining,
                    _request_timeout=remaining + 5,
                ):
                    progress = self.status(namespace, release)
                    if on_progress:
                        on_progress(progress)
                    if progress.complete or progress.failed:
                        stream.stop()
                        return progress
                    if time.monotonic() >= deadline:
                        break
            except ApiException as exc:
                if exc.status == 410:  # resourceVersion too old: start a fresh watch
                    continue
                raise ClusterUnreachable(
                    f"Kubernetes API error {exc.status}: {exc.reason}"
                ) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise ClusterUnreachable(f"cluster unreachable: {exc.__class__.__name__}") from exc
            finally:
                with contextlib.suppress(Exception):
                    stream.stop()
        return self.status(namespace, release)
