"""Who starts or acts on an execution, whichever door they came through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from executions.models import ActorKind

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


@dataclass(frozen=True)
class Actor:
    kind: str
    label: str
    user: AbstractBaseUser | None = None
    ref: str = ""
    """A stable machine reference ("user:7", "api_key:42", "jwt:<iss>:<sub>", "slack:U123") for filtering."""

    @classmethod
    def for_user(
        cls, user: AbstractBaseUser, *, kind: str = ActorKind.USER, label: str | None = None, ref: str | None = None
    ) -> Actor:
        return cls(kind=kind, label=label or user.get_username(), user=user, ref=ref or f"user:{user.pk}")

    @classmethod
    def system(cls, label: str) -> Actor:
        """An operator acting with the server's own authority (manage.py, the scheduler)."""
        return cls(kind=ActorKind.SYSTEM, label=label, ref=f"system:{label}")

    @classmethod
    def anonymous(cls, ref: str) -> Actor:
        """Someone not signed in, using a door open to anyone (a public form); ``ref`` ties their starts
        together (``"session:<hash>"``) without naming them."""
        return cls(kind=ActorKind.ANONYMOUS, label="anonymous", ref=ref)

    @property
    def is_system(self) -> bool:
        return self.kind == ActorKind.SYSTEM
