"""Kubernetes clusters Slipway deploys to."""

from django.db import models

from portal.core import sizes
from portal.core.crypto import EncryptedTextField


class Cluster(models.Model):
    """A Kubernetes API endpoint and the kubeconfig to reach it (stored encrypted)."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    api_server_url = models.CharField(
        max_length=sizes.LINE, blank=True, help_text="For display; the kubeconfig rules."
    )
    kubeconfig = EncryptedTextField(help_text="Stored encrypted; never shown again.")
    context = models.CharField(
        max_length=sizes.QUOTE, blank=True, help_text="Empty: current-context."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
