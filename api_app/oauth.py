"""OAuth 2.0 access tokens (client credentials grant) issued by django-oauth-toolkit at ``/o/token/``.

A client-credentials token belongs to an OAuth *application*, not to a user, so the caller acts as the
application's owner (``Application.user``): that user's process permissions apply, and the token's scopes
can only narrow them. The rate limit counts per client id, never per IP address.

Clients are registered with ``manage.py create_oauth_client`` (:func:`oauth_client_create`) or in DOT's
admin ("Applications": confidential, client credentials, with an owner).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AbstractAccessToken, AbstractApplication, get_application_model
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthlibRequest
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from api_app.callers import ApiCaller
from executions.actors import Actor
from executions.models import ActorKind

INVALID = "The access token is not valid or has expired."
NO_OWNER = "This OAuth client has no active owner account to act as; ask an administrator to assign one."


def authenticate(token: str, request: Request) -> ApiCaller:
    """The caller behind a DOT access token, or AuthenticationFailed (401) for any token we do not honour."""
    access_token = _valid_access_token(token, request)
    application = access_token.application
    if application is None:  # e.g. a token a remote introspection server vouched for: no client to act as
        raise AuthenticationFailed(INVALID)
    owner = application.user
    if owner is None or not owner.is_active:
        raise AuthenticationFailed(NO_OWNER)
    return ApiCaller(
        actor=Actor.for_user(owner, kind=ActorKind.OAUTH_CLIENT,
                             label=f"oauth:{application.name or application.client_id}"),
        rate_key=f"oauth:{application.client_id}",
        rate_limit_per_minute=settings.HEPTORA_API_RATE_LIMIT,
        scopes=frozenset(access_token.scope.split()),
    )


def _valid_access_token(token: str, request: Request) -> AbstractAccessToken:
    """Ask DOT's own validator, so its lookup (hashed storage, introspection, resource indicators) applies.

    The validator refuses unknown tokens, revoked ones (DOT deletes them) and expired ones
    (``AccessToken.is_valid()``); we ask for no particular scope here: views check scopes with ``HasScope``.
    """
    validator = oauth2_settings.OAUTH2_VALIDATOR_CLASS()
    core_request = OAuthlibRequest(request.build_absolute_uri(), http_method=request.method)
    if not validator.validate_bearer_token(token, [], core_request):
        raise AuthenticationFailed(INVALID)
    access_token: AbstractAccessToken = core_request.access_token
    return access_token


def oauth_client_create(*, owner: AbstractBaseUser, name: str) -> tuple[AbstractApplication, str]:
    """Register a confidential client-credentials client acting as ``owner``; returns it and its secret.

    DOT stores only a hash of the secret (``hash_client_secret``), so the plain secret returned here is the
    only copy: show it once.
    """
    secret = generate_client_secret()
    application = get_application_model()(
        name=name,
        user=owner,
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=AbstractApplication.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    application.full_clean()
    application.save()
    return application, secret
