"""`Authorization: Bearer …` for all three methods, routed by the token's shape.

API keys start with ``hep_``; JWTs have three dot-separated parts; anything else is taken as an OAuth 2.0
access token. Routing first means one method's checks never reject another method's token.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app import api_keys, jwt_auth, oauth
from api_app.callers import ApiCaller

REALM = 'Bearer realm="heptora"'


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, ApiCaller] | None:
        header = get_authorization_header(request)
        if not header:
            return None
        try:
            scheme, _, token = header.decode("latin-1").partition(" ")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes any byte
            raise AuthenticationFailed("The Authorization header is not readable.") from None
        if scheme.lower() != "bearer":
            raise AuthenticationFailed("Send credentials as 'Authorization: Bearer <API key or token>'.")
        token = token.strip()
        if not token or " " in token:
            raise AuthenticationFailed("Send exactly one token after 'Bearer'.")
        if token.startswith(api_keys.API_KEY_PREFIX):
            caller = api_keys.authenticate(token, request)
        elif token.count(".") == 2:
            caller = jwt_auth.authenticate(token, request)
        else:
            caller = oauth.authenticate(token, request)
        return caller.actor.user, caller

    def authenticate_header(self, request: Request) -> str:
        return REALM
