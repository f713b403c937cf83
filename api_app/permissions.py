"""API permissions: authenticated callers, and OAuth/JWT scopes where the token carries them."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api_app.callers import SCOPE_EXECUTE, SCOPE_READ, ApiCaller
from executions.actors import Actor


def caller_of(request: Request) -> ApiCaller | None:
    return request.auth if isinstance(request.auth, ApiCaller) else None


def actor_of(request: Request) -> Actor:
    caller = caller_of(request)
    if caller is not None:
        return caller.actor
    return Actor.for_user(request.user)  # a signed-in browser session (Swagger UI, the web forms)


class HasScope(BasePermission):
    """Reads need process:read or process:execute; writes need process:execute."""

    message = "This token lacks the scope this call needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        caller = caller_of(request)
        if caller is None:
            return bool(request.user and request.user.is_authenticated)
        needed = getattr(view, "required_scope", SCOPE_READ)
        if needed == SCOPE_READ:
            ok = caller.has_scope(SCOPE_READ) or caller.has_scope(SCOPE_EXECUTE)
        else:
            ok = caller.has_scope(needed)
        if not ok:
            self.message = f"This token lacks the scope '{needed}' this call needs."
        return ok
