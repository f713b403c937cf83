"""API keys: `hep_…` bearer tokens. (Being built.)"""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import ApiCaller

API_KEY_PREFIX = "hep_"


def authenticate(token: str, request: Request) -> ApiCaller:
    raise AuthenticationFailed("The API key is not valid.")
