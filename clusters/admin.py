from django import forms
from django.contrib import admin

from clusters.models import Cluster
from portal.audit.changes import AuditedAdmin
from portal.catalog.models import ClusterEnvironment, NamespaceGrant
from portal.web.forms import KeepSecretForm


class ClusterForm(KeepSecretForm):
    secret_field = "kubeconfig"
    kubeconfig = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=True,
        help_text="Stored encrypted; never shown again.",
    )

    class Meta:
        model = Cluster
        fields = ["slug", "name", "api_server_url", "context", "kubeconfig"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A textarea that never echoes the stored kubeconfig.
        self.initial["kubeconfig"] = ""


class ClusterEnvironmentInline(admin.TabularInline):
    model = ClusterEnvironment
    extra = 1
    verbose_name_plural = "Environments whose targets may use this cluster"


class NamespaceGrantInline(admin.TabularInline):
    model = NamespaceGrant
    extra = 1
    verbose_name_plural = "Namespaces each team may deploy to (patterns such as shop-*)"


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    form = ClusterForm
    list_display = ["name", "slug", "api_server_url"]
    inlines = [ClusterEnvironmentInline, NamespaceGrantInline]
