"""What every API view shares: scopes, the per-caller rate limit and its headers, and the call log."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_app.callers import SCOPE_READ
from api_app.calls import api_call_record
from api_app.permissions import HasScope, actor_of, caller_of
from api_app.throttling import rate_limit_take
from executions.actors import Actor
from heptora.local_cache import API_KEYS, DEFINITIONS, GRANTS, optimistic


class RateLimited(APIException):
    """429 whose message already says when to retry (DRF's Throttled would add a second sentence)."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, *, detail: str, wait: int) -> None:
        super().__init__(detail)
        self.wait = wait  # DRF turns this into the Retry-After header


class HeptoraAPIView(APIView):
    permission_classes = [HasScope]
    required_scope = SCOPE_READ

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:
        self.started = time.monotonic()
        self.execution_id = ""
        # The key row, the process, its definition and its gate, and what the caller was granted, come from
        # local copies; whether they are
        # all still current is read in the round trip that counts an API key's use (heptora.local_cache).
        with optimistic(API_KEYS, DEFINITIONS, GRANTS):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Count every authenticated call, refused ones included, so the limit and its headers are honest.
        self.perform_authentication(request)
        state = rate_limit_take(request)
        request.rate_state = state
        if state is not None and state.exceeded:
            raise RateLimited(wait=state.reset, detail=(
                f"Rate limit of {state.limit} requests per minute exceeded; retry in {state.reset} s."))
        super().initial(request, *args, **kwargs)

    def check_throttles(self, request: Request) -> None:
        """Done in initial(), before the permission checks."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_state", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        caller = caller_of(request)
        user = getattr(request, "_user", None)
        authenticated = bool(user and user.is_authenticated)
        api_call_record(
            request=request._request, status_code=response.status_code,
            duration_ms=int((time.monotonic() - self.started) * 1000),
            caller_kind=caller.actor.kind if caller else ("session" if authenticated else ""),
            caller_label=caller.actor.label if caller else (user.get_username() if authenticated else ""),
            user_id=user.pk if authenticated else None, execution_id=self.execution_id,
        )
        return response

    @property
    def actor(self) -> Actor:
        return actor_of(self.request)
