"""What every API response shares: a request id, rate limits, the call log, and the published documentation.

A support question quotes the request id from the `X-Request-ID` header or the error body; every call is in
the call log under that id; each caller has a per-minute budget announced on every response; and the
OpenAPI schema, Swagger UI and ReDoc are served by the project itself, working offline.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
import yaml
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.test import Client

from api_app.callers import SCOPE_READ
from api_app.models import ApiCall
from executions import services
from executions.models import Execution, Process
from forms_app.parameters import parameters_json_schema
from tests.api_app.helpers import EXECUTE, integration, post, signed_in

pytestmark = pytest.mark.django_db

ORDER = {"parameters": {"orderId": "ORD-2024-001", "priority": "high"}}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


# --- Helpers and fixtures -------------------------------------------------------------------------------


@pytest.fixture
def sam(staff_user: User) -> Client:
    return signed_in(staff_user)


@pytest.fixture
def anonymous() -> Client:
    return Client(HTTP_HOST="localhost")


def execute(client: Client, body: Any = ORDER, **headers: Any) -> HttpResponse:
    return post(client, body, **headers)


def away_from_a_window_edge() -> None:
    """Rate limits count in one-minute windows; start a burst of calls well inside one."""
    into_window = time.time() % 60
    if into_window > 55:
        time.sleep(60.2 - into_window)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def asset_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


# --- Request ids ----------------------------------------------------------------------------------------


def _paused_process(sam: Client, anonymous: Client) -> HttpResponse:
    services.process_pause(process=Process.objects.get(slug="order-processing"), reason="Stock-take")
    return execute(sam)


def _not_allowed(sam: Client, anonymous: Client) -> HttpResponse:
    outsider = User.objects.create_user("olga", "olga@example.com", "pw")
    return execute(integration(outsider))


SUCCESSES: dict[str, Callable[[Client, Client], HttpResponse]] = {
    "a list": lambda sam, anonymous: sam.get("/api/v1/processes/"),
    "a start": lambda sam, anonymous: execute(sam),
    "the schema": lambda sam, anonymous: anonymous.get("/api/schema/"),
    "swagger ui": lambda sam, anonymous: anonymous.get("/api/docs/"),
}
ERRORS: dict[str, Callable[[Client, Client], HttpResponse]] = {
    "invalid parameters": lambda sam, anonymous: execute(sam, {"parameters": {}}),
    "invalid json": lambda sam, anonymous: execute(sam, "{"),
    "a wrong content type": lambda sam, anonymous: sam.post(EXECUTE, "x", content_type="text/plain"),
    "no credentials": lambda sam, anonymous: anonymous.get("/api/v1/executions/"),
    "not allowed": _not_allowed,
    "an unknown process": lambda sam, anonymous: sam.get("/api/v1/processes/nope/"),
    "an unknown execution": lambda sam, anonymous: sam.get("/api/v1/executions/exec-0000000000000000"),
    "a wrong method": lambda sam, anonymous: sam.delete("/api/v1/processes/"),
    "a paused process": _paused_process,
}


@pytest.mark.parametrize("call", [*SUCCESSES.values(), *ERRORS.values()], ids=[*SUCCESSES, *ERRORS])
def test_every_response_carries_a_request_id(sam: Client, anonymous: Client, call: Callable[..., HttpResponse]) -> None:
    response = call(sam, anonymous)

    assert GENERATED_ID.fullmatch(response["X-Request-ID"])


@pytest.mark.parametrize("call", ERRORS.values(), ids=ERRORS.keys())
def test_every_error_body_names_the_request_id_of_its_header(
    sam: Client, anonymous: Client, call: Callable[..., HttpResponse]
) -> None:
    response = call(sam, anonymous)

    assert response.status_code >= 400
    assert response.json()["error"]["requestId"] == response["X-Request-ID"]
    assert Execution.objects.count() == 0


def test_two_responses_never_share_a_generated_request_id(sam: Client) -> None:
    ids = {sam.get("/api/v1/processes/")["X-Request-ID"] for _ in range(5)}

    assert len(ids) == 5


def test_a_sane_request_id_from_the_caller_is_kept_everywhere(sam: Client, staff_user: User) -> None:
    response = execute(sam, {"parameters": {}}, HTTP_X_REQUEST_ID="shopify-webhook:1001.retry-2")

    assert response["X-Request-ID"] == "shopify-webhook:1001.retry-2"
    assert response.json()["error"]["requestId"] == "shopify-webhook:1001.retry-2"
    assert ApiCall.objects.get().request_id == "shopify-webhook:1001.retry-2"


@pytest.mark.parametrize("given", ["x" * 300, "has spaces in it", "<script>", "id;drop", ""],
                         ids=["300 characters", "spaces", "markup", "semicolon", "empty"])
def test_an_insane_request_id_is_replaced_by_a_fresh_one(sam: Client, given: str) -> None:
    response = sam.get("/api/v1/executions/exec-0000000000000000", HTTP_X_REQUEST_ID=given)

    assert GENERATED_ID.fullmatch(response["X-Request-ID"])
    assert response.json()["error"]["requestId"] == response["X-Request-ID"]


def test_the_log_line_of_a_call_names_its_request_id(sam: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="heptora.api")

    response = sam.get("/api/v1/processes/", HTTP_X_REQUEST_ID="support-1234")

    assert response.status_code == 200
    [line] = [r.getMessage() for r in caplog.records if r.name == "heptora.api"]
    assert line.startswith("api GET /api/v1/processes/ 200 ")
    assert line.endswith("caller=sam exec=- req=support-1234")


# --- Rate limits ----------------------------------------------------------------------------------------


def test_an_authenticated_response_announces_the_rate_limit(sam: Client) -> None:
    away_from_a_window_edge()

    first = sam.get("/api/v1/processes/")
    second = sam.get("/api/v1/executions/exec-0000000000000000")

    assert (first["RateLimit-Limit"], first["RateLimit-Remaining"]) == ("100", "99")
    assert (second["RateLimit-Limit"], second["RateLimit-Remaining"]) == ("100", "98")
    assert 1 <= int(first["RateLimit-Reset"]) <= 60
    assert "Retry-After" not in first


def test_an_anonymous_response_has_no_rate_limit_headers(anonymous: Client) -> None:
    response = anonymous.get("/api/v1/processes/")

    assert response.status_code == 401
    assert "RateLimit-Limit" not in response


def test_a_refused_call_of_an_authenticated_caller_still_announces_the_rate_limit(staff_user: User) -> None:
    away_from_a_window_edge()
    client = integration(staff_user, scopes={SCOPE_READ})

    response = execute(client)

    assert response.status_code == 403
    assert (response.get("RateLimit-Limit"), response.get("RateLimit-Remaining")) == ("100", "99")


def test_an_api_caller_over_its_own_limit_gets_429_with_retry_after(staff_user: User) -> None:
    away_from_a_window_edge()
    client = integration(staff_user, rate_limit=3)

    allowed = [client.get("/api/v1/processes/") for _ in range(3)]
    refused = client.get("/api/v1/processes/")

    assert [r.status_code for r in allowed] == [200, 200, 200]
    assert [r["RateLimit-Remaining"] for r in allowed] == ["2", "1", "0"]
    assert refused.status_code == 429
    wait = refused["Retry-After"]
    assert 1 <= int(wait) <= 60
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"], refused["RateLimit-Reset"]) == ("3", "0", wait)
    error = refused.json()["error"]
    assert (error["code"], error["requestId"]) == ("rate_limited", refused["X-Request-ID"])


def test_the_429_message_says_when_to_retry_once(staff_user: User) -> None:
    away_from_a_window_edge()
    client = integration(staff_user, rate_limit=1)
    client.get("/api/v1/processes/")

    refused = client.get("/api/v1/processes/")

    wait = refused["Retry-After"]
    assert refused.json()["error"]["message"] == f"Rate limit of 1 requests per minute exceeded; retry in {wait} s."


def test_a_start_over_the_limit_starts_nothing(staff_user: User) -> None:
    away_from_a_window_edge()
    client = integration(staff_user, rate_limit=1)
    execute(client)

    refused = execute(client, {"parameters": {"orderId": "ORD-2024-002", "priority": "low"}})

    assert refused.status_code == 429
    assert list(Execution.objects.values_list("parameters__orderId", flat=True)) == ["ORD-2024-001"]


def test_a_signed_in_user_is_limited_by_the_configured_rate(sam: Client, settings: Any) -> None:
    settings.HEPTORA_API_RATE_LIMIT = 2
    away_from_a_window_edge()

    statuses = [sam.get("/api/v1/processes/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_each_caller_has_its_own_budget(staff_user: User, sam: Client) -> None:
    away_from_a_window_edge()
    shopify = integration(staff_user, rate_limit=1, rate_key="api_key:shopify")
    erp = integration(staff_user, rate_limit=1, rate_key="api_key:erp")

    assert [shopify.get("/api/v1/processes/").status_code for _ in range(2)] == [200, 429]
    assert erp.get("/api/v1/processes/").status_code == 200
    assert sam.get("/api/v1/processes/").status_code == 200


# --- The call log ---------------------------------------------------------------------------------------


def test_each_call_is_logged_once_with_caller_status_and_execution(sam: Client, staff_user: User) -> None:
    started = execute(sam)
    execution_id = started.json()["executionId"]
    sam.get(f"/api/v1/executions/{execution_id}")
    sam.get("/api/v1/executions/?status=queued")

    calls = list(ApiCall.objects.order_by("id").values(
        "method", "path", "status_code", "caller_kind", "caller_label", "user", "execution_id"))
    assert calls == [
        {"method": "POST", "path": EXECUTE, "status_code": 202, "caller_kind": "session", "caller_label": "sam",
         "user": staff_user.pk, "execution_id": execution_id},
        {"method": "GET", "path": f"/api/v1/executions/{execution_id}", "status_code": 200, "caller_kind": "session",
         "caller_label": "sam", "user": staff_user.pk, "execution_id": execution_id},
        {"method": "GET", "path": "/api/v1/executions/?status=queued", "status_code": 200, "caller_kind": "session",
         "caller_label": "sam", "user": staff_user.pk, "execution_id": ""},
    ]
    first = ApiCall.objects.order_by("id").first()
    assert first.request_id == started["X-Request-ID"]
    assert first.ip == "127.0.0.1"
    assert first.duration_ms >= 0


@pytest.mark.django_db(transaction=True)
def test_under_load_calls_are_logged_in_batches_and_none_is_lost(staff_user: User, settings: Any) -> None:
    """Production writes the call log in batches: a full batch at once, a partial one within the interval."""
    settings.HEPTORA_API_CALL_LOG_BATCH = 3
    settings.HEPTORA_API_CALL_LOG_FLUSH_SECONDS = 0.3
    client = integration(staff_user)

    ids = [execute(client).json()["executionId"] for _ in range(3)]
    assert sorted(ApiCall.objects.values_list("execution_id", flat=True)) == sorted(ids)  # the batch was full

    fourth = execute(client).json()["executionId"]
    assert ApiCall.objects.count() == 3  # waiting in the buffer
    deadline = time.monotonic() + 5
    while ApiCall.objects.count() < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ApiCall.objects.filter(execution_id=fourth, status_code=202).exists()


def test_an_api_callers_calls_are_logged_under_its_name(staff_user: User) -> None:
    response = execute(integration(staff_user), HTTP_USER_AGENT="Shopify-Webhooks/1.0")

    call = ApiCall.objects.get()
    assert (call.caller_kind, call.caller_label, call.user) == (
        "api_key", "Shopify orders (hep_0000test)", staff_user)
    assert (call.status_code, call.execution_id) == (202, response.json()["executionId"])
    assert call.user_agent == "Shopify-Webhooks/1.0"


def test_refused_calls_are_logged_too(sam: Client, anonymous: Client) -> None:
    anonymous.get("/api/v1/processes/")
    execute(sam, {"parameters": {}})
    sam.get("/api/v1/executions/exec-0000000000000000")

    calls = list(ApiCall.objects.order_by("id").values_list("status_code", "caller_kind", "caller_label",
                                                            "execution_id"))
    assert calls == [(401, "", "", ""), (400, "session", "sam", ""), (404, "session", "sam", "")]


def test_a_replayed_start_is_logged_with_the_execution_it_replayed(sam: Client) -> None:
    first = execute(sam, HTTP_IDEMPOTENCY_KEY="order-1001")
    execute(sam, HTTP_IDEMPOTENCY_KEY="order-1001")

    execution_id = first.json()["executionId"]
    assert list(ApiCall.objects.order_by("id").values_list("status_code", "execution_id")) == [
        (202, execution_id), (202, execution_id)]


# --- OpenAPI schema, Swagger UI, ReDoc ------------------------------------------------------------------


@pytest.fixture
def schema(anonymous: Client) -> dict[str, Any]:
    response = anonymous.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_schema_is_openapi_3_describing_every_endpoint(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Heptora API"
    assert {
        "/api/v1/processes/", "/api/v1/processes/{process_id}/", "/api/v1/processes/{process_id}/execute",
        "/api/v1/processes/{process_id}/execute/batch", "/api/v1/processes/{process_id}/validate",
        "/api/v1/executions/", "/api/v1/executions/{execution_id}", "/api/v1/executions/{execution_id}/events",
        "/api/v1/executions/{execution_id}/cancel", "/api/v1/executions/{execution_id}/retry",
    } <= set(schema["paths"])
    generic = schema["paths"]["/api/v1/processes/{process_id}/execute"]["post"]
    assert set(generic["responses"]) == {"202", "400", "401", "403", "404", "409", "429"}
    assert "Idempotency-Key" in [p["name"] for p in generic["parameters"]]


def test_the_schema_describes_the_three_authentication_schemes(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]

    assert (schemes["apiKey"]["type"], schemes["apiKey"]["scheme"]) == ("http", "bearer")
    assert schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"] == "/o/token/"
    assert set(schemes["oauth2"]["flows"]["clientCredentials"]["scopes"]) == {"process:execute", "process:read"}
    assert (schemes["jwt"]["scheme"], schemes["jwt"]["bearerFormat"]) == ("bearer", "JWT")


def test_order_processing_has_its_own_execute_path_and_request_schema(schema: dict[str, Any]) -> None:
    operation = schema["paths"]["/api/v1/processes/order-processing/execute"]["post"]

    assert operation["operationId"] == "execute_order_processing"
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExecuteOrderProcessingRequest"}
    assert "process_id" not in [p["name"] for p in operation.get("parameters", [])]
    body = schema["components"]["schemas"]["ExecuteOrderProcessingRequest"]
    assert body["properties"]["parameters"] == parameters_json_schema(Process.objects.get(slug="order-processing"))
    assert body["properties"]["parameters"]["required"] == ["orderId", "priority"]
    assert "parameters" in body["required"]


def test_a_process_request_schema_keeps_the_other_fields_of_the_execute_body(schema: dict[str, Any]) -> None:
    generic = schema["components"]["schemas"]["ExecuteRequestRequest"]["properties"]
    body = schema["components"]["schemas"]["ExecuteOrderProcessingRequest"]["properties"]

    assert set(body) == {"processId", "parameters", "notifyEmail", "timeout", "callbackUrl"}
    assert {name: body[name] for name in ("processId", "notifyEmail", "timeout", "callbackUrl")} == {
        name: generic[name] for name in ("processId", "notifyEmail", "timeout", "callbackUrl")}


def test_every_registered_process_has_its_own_execute_path(schema: dict[str, Any]) -> None:
    slugs = Process.objects.filter(is_registered=True).values_list("slug", flat=True)

    assert {f"/api/v1/processes/{slug}/execute" for slug in slugs} <= set(schema["paths"])


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"], ids=["swagger ui", "redoc"])
def test_the_documentation_pages_load_every_asset_from_the_project_itself(anonymous: Client, page: str) -> None:
    response = anonymous.get(page)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "/api/schema/" in html
    urls = asset_urls(html)
    assert urls, "the page loads no assets at all"
    remote = [url for url in urls if re.match(r"^(https?:)?//", url)]
    assert remote == [], "the page needs the internet for these"
    for url in urls:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")) is not None, f"{url} is not a file the project serves"


def test_the_swagger_ui_page_is_ready_to_try_calls(anonymous: Client) -> None:
    html = anonymous.get("/api/docs/").content.decode()

    assert '"tryItOutEnabled": true' in html
    assert '"persistAuthorization": true' in html


def test_reading_the_documentation_starts_nothing(anonymous: Client) -> None:
    anonymous.get("/api/schema/")
    anonymous.get("/api/docs/")
    anonymous.get("/api/redoc/")

    assert Execution.objects.count() == 0
