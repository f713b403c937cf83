"""The execute body's shortcut for plain bodies must agree with the serializer on everything it accepts."""

from __future__ import annotations

from typing import Any

import pytest

from api_app.serializers import ExecuteRequest, execute_request_plain

BODIES: list[Any] = [
    {},
    {"parameters": {}},
    {"parameters": {"orderId": "ORD-2024-001", "priority": "High", "amount": 99.5, "metadata": {"a": [1, {}]}}},
    {"parameters": {"orderId": "ORD-2024-001"}, "notifyEmail": "ops@example.com", "timeout": 300},
    {"parameters": {}, "notifyEmail": "", "callbackUrl": "", "timeout": None},
    {"parameters": {}, "callbackUrl": "https://erp.example.com/hook", "processId": "order-processing"},
    {"parameters": {}, "timeout": -5},
    {"parameters": {}, "timeout": 0},
    # bodies the shortcut leaves to the serializer (errors, or values the serializer converts)
    {"parameters": None},
    {"parameters": []},
    {"parameters": "orderId=1"},
    {"notifyEmail": None},
    {"notifyEmail": 42},
    {"notifyEmail": " ops@example.com "},
    {"notifyEmail": "x" * 255},
    {"callbackUrl": "h" * 2001},
    {"timeout": "300"},
    {"timeout": 300.0},
    {"timeout": 12.5},
    {"timeout": True},
    {"processId": ""},
    {"processId": None},
    {"processId": 7},
    {"notifyEmial": "typo@example.com"},
    {"callbackUrl": "https://erp.example.com/a\x00b"},
    {"notifyEmail": "ops\ud800@example.com"},
    {"processId": "order\x00processing"},
    {"parameters": {}, "extra": 1},
]


@pytest.mark.parametrize("body", BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_the_plain_body_shortcut_gives_what_the_serializer_gives(body: dict) -> None:
    serializer = ExecuteRequest(data=body)
    valid = serializer.is_valid()
    plain = execute_request_plain(body)

    if plain is not None:  # whatever the shortcut accepts, the serializer accepts the same way
        assert valid, serializer.errors
        assert plain == dict(serializer.validated_data)


def test_the_shortcut_takes_the_bodies_clients_send() -> None:
    assert execute_request_plain({"parameters": {"orderId": "ORD-2024-001"}, "notifyEmail": "a@example.com"}) == {
        "parameters": {"orderId": "ORD-2024-001"}, "notifyEmail": "a@example.com", "callbackUrl": "",
        "timeout": None}
    assert execute_request_plain({"timeout": "300"}) is None  # the serializer converts it


def test_the_shortcut_leaves_nul_and_lone_surrogates_to_the_serializer() -> None:
    for body in ({"callbackUrl": "https://erp.example.com/a\x00b"}, {"notifyEmail": "ops\ud800@example.com"}):
        assert execute_request_plain(body) is None
        assert not ExecuteRequest(data=body).is_valid()
