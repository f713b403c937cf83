"""Benchmark-only endpoints (mounted at /bench/ only when HEPTORA_BENCH_ENDPOINTS=1; never in the schema).

* ``POST /bench/bare``: the floor. A plain DRF view with the project's default authentication (so the same
  ``Authorization: Bearer hep_…`` key is verified, through the same cached lookup) and ``IsAuthenticated``;
  it parses the JSON body and answers ``{"ok": true}``. No rate limit, call log, serializer or database write.
* ``POST /bench/nopublish/processes/<id>/execute``: exactly the public execute view (same class, same
  rate limit, call log, serializer, launch path and INSERTs) except that the broker publish after commit is
  skipped for this request, to price the publish. The executions it creates stay ``queued``.

How the publish is skipped: on import this module wraps ``executions.services.execution_publish`` (the one
function that sends an execution to the broker) with a check of a thread-local flag that only the
no-publish view sets, around its own request. gunicorn's threads each serve one request at a time and the
publish runs on commit inside that request, so the public endpoint served by the same process at the same
time keeps publishing. Nothing in executions/ or api_app/ knows about the benchmark.
"""

from __future__ import annotations

import threading
from typing import Any

from django.http import HttpRequest
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_app.views.processes import ExecuteView
from executions import services

_local = threading.local()


def _publish_unless_skipped(*, execution_pk: int, timeout: int) -> None:
    if getattr(_local, "skip_publish", False):
        return
    _real_publish(execution_pk=execution_pk, timeout=timeout)


_real_publish = services.execution_publish


def install_publish_switch() -> None:
    """Route the launch path's publish through the switch (idempotent; done when this module loads)."""
    global _real_publish
    if services.execution_publish is not _publish_unless_skipped:
        _real_publish = services.execution_publish
        services.execution_publish = _publish_unless_skipped


def uninstall_publish_switch() -> None:
    if services.execution_publish is _publish_unless_skipped:
        services.execution_publish = _real_publish


install_publish_switch()


class BareView(APIView):
    permission_classes = [IsAuthenticated]
    schema = None  # benchmark only: not part of the public API

    def post(self, request: Request) -> Response:
        request.data  # noqa: B018 - parse the body like a real endpoint does
        return Response({"ok": True})


class NoPublishExecuteView(ExecuteView):
    schema = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        _local.skip_publish = True
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            _local.skip_publish = False
