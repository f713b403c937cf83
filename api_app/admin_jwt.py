"""Admin for the identity providers whose JWTs the API accepts.

(OAuth clients are django-oauth-toolkit's ``Application`` rows, managed in DOT's own admin.)
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from api_app.jwt_auth import rsa_public_key
from api_app.models import JwtAlgorithm, JwtIssuer

MIN_SECRET_LENGTH = 32  # bytes of HMAC-SHA256 output; RFC 7518 section 3.2
MIN_RSA_BITS = 2048


class JwtIssuerForm(forms.ModelForm):
    class Meta:
        model = JwtIssuer
        fields = ["issuer", "audience", "is_active", "algorithm", "shared_secret", "public_key", "subject_field",
                  "leeway_seconds", "rate_limit_per_minute"]
        widgets = {"shared_secret": forms.PasswordInput(render_value=True, attrs={"autocomplete": "off"})}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        algorithm = data.get("algorithm")
        secret = data.get("shared_secret") or ""
        pem = (data.get("public_key") or "").strip()
        if algorithm == JwtAlgorithm.HS256:
            if pem:
                self.add_error("public_key", "HS256 uses the shared secret only; leave the public key empty.")
            if not secret:
                self.add_error("shared_secret", "HS256 needs the shared secret the issuer signs with.")
            elif len(secret.encode()) < MIN_SECRET_LENGTH:
                self.add_error("shared_secret", f"Use a secret of at least {MIN_SECRET_LENGTH} characters.")
            elif "-----BEGIN" in secret:
                self.add_error("shared_secret", "This looks like a PEM key; HS256 needs a shared secret.")
        elif algorithm == JwtAlgorithm.RS256:
            if secret:
                self.add_error("shared_secret", "RS256 uses the public key only; leave the shared secret empty.")
            if not pem:
                self.add_error("public_key", "RS256 needs the issuer's public key (PEM).")
            else:
                problem = _rsa_public_key_problem(pem)
                if problem:
                    self.add_error("public_key", problem)
                else:
                    data["public_key"] = pem + "\n"
        return data


def _rsa_public_key_problem(pem: str) -> str | None:
    if "PRIVATE KEY" in pem:
        return "This is a private key. Paste only the PUBLIC key; keep the private key with the issuer."
    try:
        key = rsa_public_key(pem)
    except ValueError:
        return "This is not an RSA public key in PEM form (-----BEGIN PUBLIC KEY----- …)."
    if key.key_size < MIN_RSA_BITS:
        return f"This RSA key has {key.key_size} bits; use at least {MIN_RSA_BITS}."
    return None


@admin.register(JwtIssuer)
class JwtIssuerAdmin(admin.ModelAdmin):
    form = JwtIssuerForm
    list_display = ["issuer", "audience", "algorithm", "subject_field", "is_active", "rate_limit_per_minute",
                    "created_at"]
    list_filter = ["algorithm", "is_active", "subject_field"]
    search_fields = ["issuer", "audience"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["issuer", "audience", "is_active"]}),
        ("Signature", {
            "fields": ["algorithm", "shared_secret", "public_key"],
            "description": "HS256: a shared secret of at least 32 characters. RS256: the issuer's RSA public key "
                           "(PEM). Tokens signed any other way are refused.",
        }),
        ("Tokens", {"fields": ["subject_field", "leeway_seconds", "rate_limit_per_minute", "created_at"]}),
    ]
