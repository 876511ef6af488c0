"""Core API endpoints."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.models import Membership


class MeApi(APIView):
    """Who the caller is, and their roles: a quick check that a token works."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        authenticated_by = serializers.CharField()
        roles = serializers.DictField(child=serializers.CharField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request):
        roles = dict(Membership.objects.filter(user=request.user).values_list("team__slug", "role"))
        data = {
            "username": request.user.get_username(),
            "authenticated_by": "token" if request.auth is not None else "session",
            "roles": roles,
        }
        return Response(self.OutputSerializer(data).data)
