from django.contrib import admin

from clusters.models import Cluster
from portal.admin_audit import AuditedAdmin
from portal.forms import ClusterForm
from portal.models import ClusterEnvironment, NamespaceGrant


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
