"""The demo's service declared in its own repository: `make run` serves `.local/git` with
`git daemon` and seeds `ledger.git` with a slipway.yaml (once: what you push since stays),
and the demo's catalog source points at it (docs/catalog.md, "Try it")."""

from __future__ import annotations

from pathlib import Path

from devtools.git_server import seed_repository

REPOSITORY = "ledger"


def ledger_file(chart: Path) -> str:
    """Ledger: built by Drone, to Beta and Prod on the local cluster, with a gate of its own."""
    return f"""\
# Ledger, declared in its own repository: Slipway's catalog syncs it (docs/catalog.md).
apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: ledger
  title: Ledger
  team: demo
spec:
  chart: {{ref: {chart}}}
  image: {{repository: registry.local/demo/ledger}}
  build: {{backend: drone, server: local-drone, repository: demo/ledger}}
  values: {{replicaCount: 1}}
  targets:
    - {{environment: beta, cluster: local, namespace: ledger-beta}}
    - {{environment: prod, cluster: local, namespace: ledger-prod, values: {{replicaCount: 2}}}}
  gates:
    - {{environment: beta, name: Finance sign-off, kind: checklist}}
"""


def seed(root: Path, chart: Path) -> bool:
    """Make the demo's repository under `root` unless it is there; True when made."""
    return seed_repository(
        root, REPOSITORY, {"slipway.yaml": ledger_file(chart)}, "Declare Ledger in Slipway"
    )
