"""Who is calling the API, whichever of the three authentication methods they used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from executions.actors import Actor

if TYPE_CHECKING:
    from api_app.throttling import RateState


@dataclass(frozen=True)
class ApiCaller:
    """Set as ``request.auth`` by :class:`api_app.authentication.BearerAuthentication`.

    ``rate_key`` names the bucket the rate limit counts in (one per API key, OAuth client or JWT subject);
    ``allowed_processes`` None means every process the user may use; ``scopes`` None means all scopes.
    """

    actor: Actor
    rate_key: str
    rate_limit_per_minute: int = 100
    allowed_processes: frozenset[str] | None = None
    scopes: frozenset[str] | None = None
    api_key_id: int | None = None
    rate_counted: RateState | None = None  # this request, already counted against the limit
    extra: dict[str, str] = field(default_factory=dict)

    def may_use_process(self, process_id: str) -> bool:
        return self.allowed_processes is None or process_id in self.allowed_processes

    def has_scope(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


SCOPE_EXECUTE = "process:execute"
SCOPE_READ = "process:read"
