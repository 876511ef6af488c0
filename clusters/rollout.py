"""The one door to the Kubernetes API: watch a Helm release's workloads roll out (judged
as clusters/workloads.py says), read what their pods run, and what the cluster serves.
"""

from __future__ import annotations

import contextlib
import functools
import time

import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from clusters.errors import ClusterUnreachable
from clusters.kubeconfig import kubeconfig_dict, unusable
from clusters.workloads import (
    ContainerImage,
    RolloutProgress,
    container_images,
    pod_reasons,
    workload_progress,
)

RELEASE_ANNOTATION = "meta.helm.sh/release-name"
# How long one request to the Kubernetes API may take.
REQUEST_TIMEOUT_SECONDS = 10
POOL_CONNECTIONS = 64


@functools.lru_cache(maxsize=64)
def _api_client(kubeconfig: str, context: str | None) -> client.ApiClient:
    """One client per cluster and process, shared by the worker's threads: its connection
    pool is reused from one watch to the next instead of a TLS handshake (and the reading
    of the CA bundle) for every request of every step. A changed kubeconfig is another
    key, so another client."""
    configuration = client.Configuration()
    config.load_kube_config_from_dict(
        kubeconfig_dict(kubeconfig), context=context, client_configuration=configuration
    )
    # Connections kept per cluster: a network worker watches with dozens of threads.
    configuration.connection_pool_maxsize = POOL_CONNECTIONS
    return client.ApiClient(configuration)


class RolloutWatcher:
    """Reads and watches the workloads of one Helm release in one namespace.

    `before_call` runs before each request to the API (the workflow extends its run's
    lease there)."""

    KINDS = ("Deployment", "StatefulSet", "DaemonSet")

    def __init__(
        self,
        kubeconfig: str,
        context: str = "",
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
        before_call=None,
    ) -> None:
        try:
            api_client = _api_client(kubeconfig, context or None)
        except (ValueError, yaml.YAMLError, config.ConfigException) as exc:
            raise unusable(exc) from exc
        if api_client.configuration.verify_ssl is False:
            # The operator chose insecure-skip-tls-verify in the kubeconfig; say it once,
            # not on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.version_api = client.VersionApi(api_client)
        self.apis = client.ApisApi(api_client)
        self.request_timeout = request_timeout
        self._before_call = before_call or (lambda: None)
        self._lists = {
            "Deployment": self.apps.list_namespaced_deployment,
            "StatefulSet": self.apps.list_namespaced_stateful_set,
            "DaemonSet": self.apps.list_namespaced_daemon_set,
        }
        self._reads = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
        }

    def _call(self, function, *args, missing_ok: bool = False, **kwargs):
        """One request; `missing_ok`: None for a 404 instead of an error."""
        self._before_call()
        try:
            return function(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            if exc.status in (401, 403):
                raise ClusterUnreachable(
                    f"the cluster refused Slipway's credentials ({exc.status} {exc.reason})"
                ) from exc
            raise ClusterUnreachable(f"Kubernetes API error {exc.status}: {exc.reason}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ClusterUnreachable(f"cluster unreachable: {exc.__class__.__name__}") from exc

    # -- reads ------------------------------------------------------------------------

    def workloads(self, namespace: str, release: str) -> list[tuple[str, object]]:
        """The release's Deployments, StatefulSets and DaemonSets, as (kind, object)."""
        found = []
        for kind, listing in self._lists.items():
            for item in self._call(listing, namespace).items:
                if (item.metadata.annotations or {}).get(RELEASE_ANNOTATION) == release:
                    found.append((kind, item))
        return found

    def pods_of(self, namespace: str, workload) -> list:
        selector = (workload.spec.selector.match_labels or {}) if workload.spec.selector else {}
        if not selector:
            return []
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        return self._call(
            self.core.list_namespaced_pod, namespace, label_selector=label_selector
        ).items

    def events(self, namespace: str, names: list[str], limit: int = 10) -> list[str]:
        events = self._call(self.core.list_namespaced_event, namespace).items
        related = [e for e in events if e.involved_object and e.involved_object.name in names]
        related.sort(
            key=lambda e: e.last_timestamp or e.event_time or e.metadata.creation_timestamp
        )
        return [f"{e.type} {e.reason}: {e.message}" for e in related[-limit:]]

    def images(self, namespace: str, release: str) -> list[ContainerImage]:
        """Each container of the release's workloads: the image its template asks for, and
        what each of its Ready pods runs (with the imageID the node reports, if any)."""
        found = []
        for kind, workload in self.workloads(namespace, release):
            found += container_images(kind, workload, self.pods_of(namespace, workload))
        return found

    def status(
        self, namespace: str, release: str, *, after_upgrade: bool = True
    ) -> RolloutProgress:
        """Where the rollout is. `after_upgrade`: helm has applied the release, so finding no
        workload means there is none to wait for."""
        return self._progress(namespace, self.workloads(namespace, release), after_upgrade)

    def _progress(
        self, namespace: str, found: list[tuple[str, object]], after_upgrade: bool = True
    ) -> RolloutProgress:
        if not found:
            return RolloutProgress(no_workload=after_upgrade)
        workloads = [workload_progress(kind, item) for kind, item in found]
        reasons = []
        for (_kind, item), progress in zip(found, workloads, strict=True):
            if not progress.complete:
                reasons += pod_reasons(self.pods_of(namespace, item))
        events = []
        if any(w.failed for w in workloads):
            events = self.events(namespace, [item.metadata.name for _, item in found])
        return RolloutProgress(workloads, events, reasons)

    def _reread(
        self, namespace: str, release: str, found: list[tuple[str, object]]
    ) -> list[tuple[str, object]]:
        """The same workloads read again by name: a GET each instead of listing every
        workload of the namespace (where hundreds of services may live); listed again if
        one has gone."""
        again = [
            (kind, self._call(self._reads[kind], item.metadata.name, namespace, missing_ok=True))
            for kind, item in found
        ]
        if any(item is None for _, item in again):
            return self.workloads(namespace, release)
        return again

    def server_capabilities(self) -> tuple[str, list[str]]:
        """The cluster's version (`v1.34.4`) and the API group versions it serves
        (`apps/v1`, `monitoring.coreos.com/v1`…), for rendering charts as helm would
        against it."""
        version = self._call(self.version_api.get_code).git_version
        groups = self._call(self.apis.get_api_versions).groups or []
        versions = {"v1"} | {v.group_version for g in groups for v in g.versions or []}
        return version, sorted(versions)

    # -- watching -------------------------------------------------------------------------

    def watch(
        self,
        namespace: str,
        release: str,
        budget_seconds: float,
        on_progress=None,
        resume_from: str | None = None,
    ) -> RolloutProgress:
        """Follow watch events for at most `budget_seconds`; return when the rollout is
        complete or failed, or when the budget is spent (the caller decides what next).

        Each short watch resumes from the last resourceVersion seen (bookmarks keep it
        fresh), so no change is delivered twice and none between two watches is missed;
        when the server has forgotten that version (410 Gone), the state is read again and
        watching starts afresh. `resume_from`: a version to start from.

        Only the release's own workloads are followed: the watch selects the one it waits
        on by name, events of other workloads are passed over, and each change re-reads
        the release's workloads by name. (Listing the namespace's workloads on every
        event of every workload in it made 50 rollouts in one namespace cost 2,500
        listings.)"""
        found = self.workloads(namespace, release)
        progress = self._progress(namespace, found)
        if on_progress:
            on_progress(progress)
        if progress.complete or progress.failed:
            return progress
        deadline = time.monotonic() + budget_seconds
        kind = found[0][0]
        names = {item.metadata.name for k, item in found if k == kind}
        only = {"field_selector": f"metadata.name={next(iter(names))}"} if len(names) == 1 else {}
        self.restarts_after_gone = 0

        def look() -> RolloutProgress:
            nonlocal found
            found = self._reread(namespace, release, found)
            progress = self._progress(namespace, found)
            if on_progress:
                on_progress(progress)
            return progress

        while time.monotonic() < deadline:
            # Short watches: a change of another kind, or of the pods, is seen at the next.
            remaining = max(1, min(5, int(deadline - time.monotonic())))
            stream = watch.Watch()
            since = {"resource_version": resume_from} if resume_from else {}
            try:
                for event in stream.stream(
                    self._lists[kind],
                    namespace,
                    timeout_seconds=remaining,
                    _request_timeout=remaining + 5,
                    allow_watch_bookmarks=True,
                    **only,
                    **since,
                ):
                    resume_from = stream.resource_version or resume_from
                    if event.get("type") == "BOOKMARK" or _name(event) not in names:
                        continue
                    progress = look()
                    if progress.complete or progress.failed:
                        stream.stop()
                        return progress
                    if time.monotonic() >= deadline:
                        break
            except ApiException as exc:
                if exc.status == 410:  # the version is gone: read the state, watch afresh
                    resume_from = None
                    self.restarts_after_gone += 1
                    progress = look()
                    if progress.complete or progress.failed:
                        return progress
                    continue
                raise ClusterUnreachable(
                    f"Kubernetes API error {exc.status}: {exc.reason}"
                ) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise ClusterUnreachable(f"cluster unreachable: {exc.__class__.__name__}") from exc
            finally:
                with contextlib.suppress(Exception):
                    stream.stop()
            progress = look()
            if progress.complete or progress.failed:
                return progress
        return self._progress(namespace, self._reread(namespace, release, found))


def _name(event: dict) -> str | None:
    item = event.get("object")
    metadata = getattr(item, "metadata", None)
    return getattr(metadata, "name", None)
