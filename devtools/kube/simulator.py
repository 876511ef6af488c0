"""Play the deployment controller: without a kubelet nothing marks a Deployment
available, so this moves each Deployment's status subresource the way the real
controller would, after a delay.

A pod template annotated `slipway.dev/simulate: fail` ends with Progressing=False,
reason ProgressDeadlineExceeded. `slipway.dev/simulate-seconds: "N"` on the template
sets how long the rollout takes (default: the simulator's delay).
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime

import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

FAIL_ANNOTATION = "slipway.dev/simulate"
SECONDS_ANNOTATION = "slipway.dev/simulate-seconds"


def _condition(kind: str, status: str, reason: str, message: str) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


class RolloutSimulator:
    """Poll Deployments and advance their status: progressing, then available or failed."""

    def __init__(
        self, kubeconfig_path: str, delay_seconds: float = 1.0, interval: float = 0.2
    ) -> None:
        # The local apiserver's certificate is self-signed; its kubeconfig says so.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self.api = client.AppsV1Api(config.new_client_from_config(kubeconfig_path))
        self.core = client.CoreV1Api(self.api.api_client)
        self.batch = client.BatchV1Api(self.api.api_client)
        self.delay = delay_seconds
        self.interval = interval
        self.first_seen: dict[tuple[str, str, int], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> RolloutSimulator:
        self._thread = threading.Thread(target=self.run, daemon=True, name="rollout-simulator")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # the apiserver may be going away
                self.tick()

    def tick(self) -> None:
        self._finish_jobs()
        now = time.monotonic()
        for deployment in self.api.list_deployment_for_all_namespaces().items:
            meta, spec, status = deployment.metadata, deployment.spec, deployment.status
            generation = meta.generation or 1
            if status and (status.observed_generation or 0) >= generation and status.conditions:
                done = {c.type: c for c in status.conditions}
                progressing = done.get("Progressing")
                if progressing and progressing.reason in (
                    "NewReplicaSetAvailable",
                    "ProgressDeadlineExceeded",
                ):
                    continue
            key = (meta.namespace, meta.name, generation)
            seen = self.first_seen.setdefault(key, now)
            annotations = (
                (spec.template.metadata.annotations or {}) if spec.template.metadata else {}
            )
            duration = float(annotations.get(SECONDS_ANNOTATION, self.delay))
            fail = annotations.get(FAIL_ANNOTATION) == "fail"
            desired = spec.replicas if spec.replicas is not None else 1
            elapsed = now - seen
            if elapsed < duration / 2:
                body = self._status(
                    generation,
                    desired,
                    updated=0,
                    ready=0,
                    old=desired,
                    progressing=(
                        "True",
                        "ReplicaSetUpdated",
                        f'ReplicaSet "{meta.name}" is progressing.',
                    ),
                )
            elif elapsed < duration:
                body = self._status(
                    generation,
                    desired,
                    updated=desired,
                    ready=desired // 2,
                    old=0,
                    progressing=(
                        "True",
                        "ReplicaSetUpdated",
                        f'ReplicaSet "{meta.name}" is progressing.',
                    ),
                )
            elif fail:
                body = self._status(
                    generation,
                    desired,
                    updated=desired,
                    ready=0,
                    old=0,
                    progressing=(
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{meta.name}" has timed out progressing.',
                    ),
                )
                self._event(
                    meta,
                    "Warning",
                    "BackOff",
                    "Back-off restarting failed container app (simulated)",
                )
            else:
                body = self._status(
                    generation,
                    desired,
                    updated=desired,
                    ready=desired,
                    old=0,
                    progressing=(
                        "True",
                        "NewReplicaSetAvailable",
                        f'ReplicaSet "{meta.name}" has successfully progressed.',
                    ),
                )
            with contextlib.suppress(ApiException):
                self.api.patch_namespaced_deployment_status(meta.name, meta.namespace, body)

    def _finish_jobs(self) -> None:
        """Play the job controller too: a Job (a Helm hook, say) completes at once, as if
        its pod had run to success."""
        for job in self.batch.list_job_for_all_namespaces().items:
            status = job.status
            if status and any(c.type in ("Complete", "Failed") for c in status.conditions or []):
                continue
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            body = {
                "status": {
                    "startTime": now,
                    "completionTime": now,
                    "succeeded": job.spec.completions or 1,
                    "conditions": [
                        _condition("SuccessCriteriaMet", "True", "CompletionsReached", "done"),
                        _condition("Complete", "True", "CompletionsReached", "done"),
                    ],
                }
            }
            with contextlib.suppress(ApiException):
                self.batch.patch_namespaced_job_status(
                    job.metadata.name, job.metadata.namespace, body
                )

    @staticmethod
    def _status(
        generation: int,
        desired: int,
        *,
        updated: int,
        ready: int,
        old: int,
        progressing: tuple[str, str, str],
    ) -> dict:
        available = "True" if ready >= desired else "False"
        return {
            "status": {
                "observedGeneration": generation,
                "replicas": updated + old,
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "unavailableReplicas": max(desired - ready, 0),
                "conditions": [
                    _condition(
                        "Available",
                        available,
                        "MinimumReplicasAvailable"
                        if available == "True"
                        else "MinimumReplicasUnavailable",
                        "Deployment has minimum availability."
                        if available == "True"
                        else "Deployment does not have minimum availability.",
                    ),
                    _condition("Progressing", *progressing),
                ],
            }
        }

    def _event(self, meta, kind: str, reason: str, message: str) -> None:
        name = f"{meta.name}.sim-{int(time.time() * 1000)}"
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, namespace=meta.namespace),
            involved_object=client.V1ObjectReference(
                kind="Deployment", name=meta.name, namespace=meta.namespace, uid=meta.uid
            ),
            reason=reason,
            message=message,
            type=kind,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="slipway-rollout-simulator"),
        )
        with contextlib.suppress(ApiException):
            self.core.create_namespaced_event(meta.namespace, body)
