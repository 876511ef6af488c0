"""Services as code through the API, a push webhook and a page (docs/catalog.md): a
platform admin lists the catalog sources, previews a sync (a dry run: what would change,
per repository's commit) and runs it; a Git server's push hook asks for a sync."""

from __future__ import annotations

import hmac

from celery import current_app
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.audit.chain import actor_and_context
from portal.catalog.as_code import source_sync
from portal.catalog.models import CatalogSource
from portal.core import queues
from portal.core.queues import Task
from portal.web.drf import ApiView
from portal.web.once import acts_once


def _admin(user) -> None:
    if not user.is_superuser:
        raise PermissionDenied("Only a platform admin manages catalog sources.")


class RepositoryReportOutput(serializers.Serializer):
    url = serializers.CharField()
    commit = serializers.CharField()
    service = serializers.CharField()
    error = serializers.CharField(help_text="Why this repository changed nothing, if it did not.")
    line = serializers.IntegerField(allow_null=True, help_text="The line of slipway.yaml at fault.")


class ChangeOutput(serializers.Serializer):
    action = serializers.ChoiceField(choices=["create", "update", "orphan", "restore"])
    service = serializers.CharField()
    repository = serializers.CharField()
    commit = serializers.CharField()
    fields = serializers.DictField(help_text="Field → [before, after].")
    targets = serializers.ListField(child=serializers.CharField())


class PlanOutput(serializers.Serializer):
    source = serializers.CharField()
    applied = serializers.BooleanField(help_text="False for a dry run.")
    changes = ChangeOutput(many=True)
    unchanged = serializers.ListField(child=serializers.CharField())
    repositories = RepositoryReportOutput(many=True)


class SourceOutput(serializers.ModelSerializer):
    repositories = serializers.ListField(source="repository_list", child=serializers.ListField())

    class Meta:
        model = CatalogSource
        fields = ["id", "name", "repositories", "enabled", "last_synced_at", "last_report"]


class SyncInput(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False, help_text="Say what would change only.")


class CatalogSourceListApi(ApiView):
    """Catalog sources (platform admins)."""

    @extend_schema(responses=SourceOutput(many=True))
    def get(self, request):
        _admin(request.user)
        return Response(SourceOutput(CatalogSource.objects.all(), many=True).data)


class CatalogSourceSyncApi(ApiView):
    """Read every repository of the source now; with dry_run, say what would change."""

    @extend_schema(request=SyncInput, responses=PlanOutput)
    def post(self, request, pk: int):
        _admin(request.user)
        source = get_object_or_404(CatalogSource, pk=pk)
        data = SyncInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = source_sync(source, dry_run=data.validated_data["dry_run"],
                           **actor_and_context(request))  # fmt: skip
        return Response(PlanOutput(plan.as_dict()).data)


@extend_schema(exclude=True)  # a hook for Git servers, not part of the REST API
class CatalogPushHook(APIView):
    """A push to a source's repository (any Git server's push webhook, the body unread):
    `/hooks/catalog/<id>?token=<the source's webhook secret>` queues a sync."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request, pk: int):
        source = CatalogSource.objects.filter(pk=pk, enabled=True).first()
        if source is None:
            raise NotFound(f"No enabled catalog source #{pk}.")
        secret = source.webhook_secret.reveal()
        token = request.query_params.get("token", "")
        if not secret or not hmac.compare_digest(secret.encode(), token.encode()):
            raise ApiPermissionDenied("Wrong or missing token for this catalog source.")
        current_app.send_task(Task.CATALOG_SYNC, args=(source.pk,), queue=queues.DEFAULT)
        return Response({"queued": True, "source": source.name}, status=status.HTTP_202_ACCEPTED)


@login_required
def catalog_page(request):
    _admin(request.user)
    return render(request, "catalog.html", {"sources": CatalogSource.objects.all()})


@login_required
@require_POST
@acts_once
def catalog_sync_view(request, pk: int):
    _admin(request.user)
    source = get_object_or_404(CatalogSource, pk=pk)
    dry_run = request.POST.get("dry_run") == "1"
    plan = source_sync(source, dry_run=dry_run, **actor_and_context(request))
    if dry_run:
        shown = {"sources": CatalogSource.objects.all(), "plan": plan.as_dict(), "planned": source}
        return render(request, "catalog.html", shown)
    changed = [c for c in plan.changes if c.action != "unchanged"]
    messages.success(request, f"{source.name} synced: {len(changed)} change(s), "
                              f"{len(plan.errors)} repository error(s).")  # fmt: skip
    return redirect("catalog")
