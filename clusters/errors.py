"""Slipway's own errors for the Kubernetes side; the workflow never sees a library's."""

from portal.core.errors import DoorError


class ClusterError(DoorError):
    """Base: something on the cluster side failed; the message is for people.
    `retryable` says whether trying later may help."""

    retryable = False


class ClusterUnreachable(ClusterError):
    """The Kubernetes API did not answer (or refused our credentials)."""

    retryable = True


class ClusterMisconfigured(ClusterError):
    """The cluster's stored kubeconfig cannot be used at all; an admin must fix it."""


class HelmFailed(ClusterError):
    """helm ran and failed; the message carries helm's own words."""


class HelmReleaseNotFound(HelmFailed):
    """No such Helm release (never installed, or uninstalled)."""


class HelmMissing(ClusterError):
    """No usable helm binary: the deployment cannot run until one is configured."""
