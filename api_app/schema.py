"""OpenAPI additions: the authentication schemes, and one execute request schema per process.

Each process's parameters are published as their own component (generated from the same definition that
validates them), with a concrete path per process, so Swagger UI offers the right fields for each.
"""

from __future__ import annotations

import copy
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from executions.models import Process
from forms_app.parameters import parameters_json_schema


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "api_app.authentication.BearerAuthentication"
    name = ["apiKey", "oauth2", "jwt"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {"type": "http", "scheme": "bearer", "bearerFormat": "hep_…",
             "description": "An API key: `Authorization: Bearer hep_…` (manage.py create_api_key, or admin)."},
            {"type": "oauth2", "description": "OAuth 2.0 client credentials (manage.py create_oauth_client).",
             "flows": {"clientCredentials": {"tokenUrl": "/o/token/", "scopes": settings.OAUTH2_PROVIDER["SCOPES"]}}},
            {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
             "description": "A JWT (HS256 or RS256) from an issuer configured in admin; `sub` names the user."},
        ]


COMMON_RESPONSES = {
    "401": {"description": "Missing, invalid or expired credentials (see WWW-Authenticate)."},
    "429": {"description": "Rate limit exceeded; retry after Retry-After seconds."},
}
WRITE_RESPONSES = {"403": {"description": "Not allowed: no permission on the process, or the token lacks the scope."}}


def document_common_errors(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Every API operation may answer 401 and 429, and every write 403: say so once for all of them."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            extra = {**COMMON_RESPONSES, **(WRITE_RESPONSES if method == "post" else {})}
            for status, response in extra.items():
                responses.setdefault(status, response)
    return result


def per_process_execute_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    paths = result.get("paths", {})
    template = paths.get("/api/v1/processes/{process_id}/execute", {}).get("post")
    if template is None:
        return result
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for process in Process.objects.filter(is_registered=True).order_by("slug"):
        name = "Execute" + "".join(part.title() for part in process.slug.split("-")) + "Request"
        generic = schemas.get("ExecuteRequestRequest") or schemas.get("ExecuteRequest")  # split request names
        body = copy.deepcopy(generic or {"type": "object", "properties": {}})
        body["properties"]["parameters"] = parameters_json_schema(process)
        if body["properties"]["parameters"].get("required"):
            body.setdefault("required", []).append("parameters")
        body["description"] = f"Start '{process.name}'. {process.description}".strip()
        schemas[name] = body
        operation = copy.deepcopy(template)
        operation["operationId"] = f"execute_{process.slug.replace('-', '_')}"
        operation["summary"] = f"Start {process.name}"
        operation["parameters"] = [p for p in operation.get("parameters", []) if p.get("name") != "process_id"]
        operation["tags"] = ["processes (one path per process)"]
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
        paths[f"/api/v1/processes/{process.slug}/execute"] = {"post": operation}
    return result
