"""OAuth 2.0 access tokens (client credentials) issued by django-oauth-toolkit. (Being built.)"""

from __future__ import annotations

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import ApiCaller


def authenticate(token: str, request: Request) -> ApiCaller:
    raise AuthenticationFailed("The access token is not valid.")
