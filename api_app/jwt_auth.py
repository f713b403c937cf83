"""JWT bearer tokens from configured issuers. (Being built.)"""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import ApiCaller


def authenticate(token: str, request: Request) -> ApiCaller:
    raise AuthenticationFailed("The token is not valid.")
