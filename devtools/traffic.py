"""`make run`'s demo traffic: what each demo service would export to Prometheus.

The local cluster's pods (kwok's) serve nobody, so this process plays their users: every
couple of seconds it counts requests for the release each demo target runs now (and for a
canary beside it, its weight's share), `http_requests_total{namespace, release, code}`, and
pushes them to the private Pushgateway that the private Prometheus scrapes. A release built
from a ref with `bad` or `broken` in its name answers a quarter of its requests with a 500,
so its verification fails and Prod rolls back to the last verified release
(docs/verification.md).
"""

from __future__ import annotations

import os
import random
import sys
import time

import django

INTERVAL_SECONDS = 2.0
REQUESTS_PER_TICK = 40


def error_share(ref: str) -> float:
    """The share of a release's requests that fail, by the ref it was built from."""
    return 0.25 if any(word in ref.lower() for word in ("bad", "broken")) else 0.005


def running_now() -> list[tuple[str, int, str, float]]:
    """(namespace, release id, ref, share of the traffic) for every demo target: its stable
    release, and a canary beside it taking the canary's weight."""
    from portal.catalog.models import DeploymentTarget
    from releases.choices import RolloutStatus
    from releases.models import TargetRollout
    from releases.promotion import target_last_change

    found = []
    for target in DeploymentTarget.objects.all():
        canary = (
            TargetRollout.objects.filter(target=target, status=RolloutStatus.CANARY)
            .select_related("deployment__release")
            .first()
        )
        weight = (canary.canary.get("weight") or 0) / 100 if canary else 0.0
        last = target_last_change(target)
        if last is not None and last.status == RolloutStatus.SUCCEEDED:
            release = last.deployment.release
            found.append((target.namespace, release.pk, release.ref, 1.0 - weight))
        if canary is not None and weight:
            release = canary.deployment.release
            found.append((target.namespace, release.pk, release.ref, weight))
    return found


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from prometheus_client import CollectorRegistry, Counter, push_to_gateway

    gateway = f"127.0.0.1:{os.environ['SLIPWAY_PUSHGATEWAY_PORT']}"
    registry = CollectorRegistry()
    requests = Counter(
        "http_requests",
        "Requests the demo services answered, by release and status code.",
        ["namespace", "release", "code"],
        registry=registry,
    )
    print(f"demo traffic: pushing to the Pushgateway on {gateway}", flush=True)
    while True:
        try:
            for namespace, release, ref, share in running_now():
                answered = max(1, round(REQUESTS_PER_TICK * share))
                failed = sum(random.random() < error_share(ref) for _ in range(answered))
                requests.labels(namespace, str(release), "500").inc(failed)
                requests.labels(namespace, str(release), "200").inc(answered - failed)
            push_to_gateway(gateway, job="demo-traffic", registry=registry)
        except Exception as exc:  # the database or the gateway restarting: try again
            print(f"demo traffic: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        time.sleep(INTERVAL_SECONDS)


if __name__ == "__main__":
    main()
