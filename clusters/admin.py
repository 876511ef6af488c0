from django.contrib import admin

from clusters.models import Cluster
from portal.admin_audit import AuditedAdmin
from portal.forms import ClusterForm


@admin.register(Cluster)
class ClusterAdmin(AuditedAdmin):
    form = ClusterForm
    list_display = ["name", "slug", "api_server_url"]
