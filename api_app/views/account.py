from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api_app.permissions import actor_of, caller_of
from api_app.views.base import HeptoraAPIView


class MeView(HeptoraAPIView):
    """Who the API takes you for: check a new key or token with this first."""

    @extend_schema(
        operation_id="whoami",
        responses=inline_serializer("Caller", {
            "kind": serializers.CharField(), "label": serializers.CharField(), "user": serializers.CharField(),
            "scopes": serializers.ListField(child=serializers.CharField(), allow_null=True),
            "allowedProcesses": serializers.ListField(child=serializers.CharField(), allow_null=True),
            "rateLimitPerMinute": serializers.IntegerField(allow_null=True),
        }),
    )
    def get(self, request: Request) -> Response:
        actor, caller = actor_of(request), caller_of(request)
        return Response({
            "kind": actor.kind if caller else "session",
            "label": actor.label,
            "user": request.user.get_username(),
            "scopes": sorted(caller.scopes) if caller and caller.scopes is not None else None,
            "allowedProcesses": sorted(caller.allowed_processes) if caller and caller.allowed_processes is not None
            else None,
            "rateLimitPerMinute": caller.rate_limit_per_minute if caller else None,
        })
