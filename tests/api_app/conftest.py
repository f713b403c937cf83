"""Shared pieces of the REST API tests."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client

# --- OAuth 2.0 client credentials (tests/api_app/test_oauth.py, test_create_oauth_client.py) -----------


def oauth_token_request(http: Client, client_id: str, client_secret: str, scope: str | None = None) -> HttpResponse:
    """What an integrator's HTTP library sends to the token endpoint: HTTP Basic client authentication."""
    credentials = base64.b64encode(f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()).decode()
    data = {"grant_type": "client_credentials"} | ({"scope": scope} if scope is not None else {})
    return http.post("/o/token/", urlencode(data), content_type="application/x-www-form-urlencoded",
                     HTTP_AUTHORIZATION=f"Basic {credentials}")


# --- Rate limits (every test in tests/api_app) ----------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_rate_limits(db: None) -> None:
    """Each test starts with empty rate-limit counters (they live in the cache)."""
    cache.clear()
