"""Kubeconfigs come out of the Cluster model decrypted, live in a private temp file for
one call to helm, and are removed at once."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from clusters.errors import ClusterMisconfigured


@contextlib.contextmanager
def kubeconfig_file(kubeconfig: str) -> Iterator[Path]:
    """Write the kubeconfig to a 0600 file in a 0700 directory; delete both afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="slipway-kube-"))
    path = directory / "config"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(kubeconfig)
        yield path
    finally:
        path.unlink(missing_ok=True)
        directory.rmdir()


def kubeconfig_dict(kubeconfig: str) -> dict:
    data = yaml.safe_load(kubeconfig)
    if not isinstance(data, dict) or "clusters" not in data:
        raise ValueError("not a kubeconfig (no clusters)")
    return data


def unusable(exc: Exception) -> ClusterMisconfigured:
    """The error for a kubeconfig that cannot be read: it names the problem, never the
    kubeconfig's content."""
    return ClusterMisconfigured(
        f"the cluster's kubeconfig is unusable ({type(exc).__name__}); "
        "an admin must store a valid one"
    )


def kubeconfig_checked(kubeconfig: str) -> dict:
    """The kubeconfig as a dict, or ClusterMisconfigured."""
    try:
        return kubeconfig_dict(kubeconfig)
    except (ValueError, yaml.YAMLError) as exc:
        raise unusable(exc) from exc
