from django.contrib import admin

from clusters.models import Cluster
from portal.forms import ClusterForm


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    form = ClusterForm
    list_display = ["name", "slug", "api_server_url"]
