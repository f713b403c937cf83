"""The benchmark's endpoints (bench/): absent unless switched on, never in the schema, and the no-publish
execute variant skips exactly the broker publish while the public endpoint keeps publishing."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client, override_settings
from guardian.shortcuts import assign_perm

from api_app.api_keys import api_key_create
from executions import services
from executions.models import Execution, Process

BODY = {"parameters": {"orderId": "ORD-2024-001", "priority": "High"}}


@pytest.fixture
def bench_views() -> Iterator[object]:
    from bench import views

    views.install_publish_switch()
    with override_settings(ROOT_URLCONF="tests.api_app.bench_urls"):
        yield views
    views.uninstall_publish_switch()


@pytest.fixture
def key_client(db: None) -> Client:
    cache.clear()
    user = User.objects.create_user("integrator-bench")
    assign_perm("executions.execute_process", user, Process.objects.get(slug="order-processing"))
    _key, full_key = api_key_create(user=user, name="bench")
    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {full_key}")


def test_bench_routes_are_absent_by_default(key_client: Client) -> None:
    assert key_client.post("/bench/bare", BODY, content_type="application/json").status_code == 404


def test_bare_endpoint_needs_the_key(bench_views: object, key_client: Client) -> None:
    answer = key_client.post("/bench/bare", BODY, content_type="application/json")
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    anonymous = Client(HTTP_HOST="localhost").post("/bench/bare", BODY, content_type="application/json")
    assert anonymous.status_code in (401, 403)


@pytest.mark.django_db(transaction=True)  # the publish runs on commit, inside the request, as in production
def test_nopublish_skips_only_the_publish(bench_views: object, key_client: Client) -> None:
    with mock.patch("executions.tasks.run_execution_send") as publish:
        skipped = key_client.post("/bench/nopublish/processes/order-processing/execute", BODY,
                                  content_type="application/json")
        assert skipped.status_code == 202
        assert publish.call_count == 0
        assert Execution.objects.get(public_id=skipped.json()["executionId"]).status == "queued"
        public = key_client.post("/api/v1/processes/order-processing/execute", BODY,
                                 content_type="application/json")
        assert public.status_code == 202
        assert publish.call_count == 1


def test_uninstall_restores_the_publish(bench_views: object) -> None:
    bench_views.uninstall_publish_switch()  # type: ignore[attr-defined]
    assert services.execution_publish.__module__ == "executions.services"
    bench_views.install_publish_switch()  # type: ignore[attr-defined]
    assert services.execution_publish.__module__ == "bench.views"


def test_bench_routes_stay_out_of_the_schema(bench_views: object, db: None) -> None:
    schema = Client(HTTP_HOST="localhost").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert paths and not [p for p in paths if p.startswith("/bench")]
