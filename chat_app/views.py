"""The web chat's pages: the full-page chat, the embeddable widget script, sign-in, and account linking."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from chat_app import services
from chat_app.models import ChatIdentity

WIDGET_JS = Path(__file__).resolve().parent / "static" / "chat_app" / "widget.js"
LOGIN = reverse_lazy("login")  # the site's one sign-in page (/accounts/login/), for staff and everyone else


@ensure_csrf_cookie
def widget_js(request: HttpRequest) -> HttpResponse:
    """``<script src="/chat/widget.js">``: the widget, told where the API and its stylesheet are.

    It also sets the CSRF cookie, so the widget can post with the session on any page of the site.
    """
    config = (f'window.HEPTORA_CHAT_CONFIG = {{"api": "{reverse("api:chat-messages")}", '
              f'"css": "{static("chat_app/widget.css")}", "login": "{reverse("login")}", '
              f'"signedIn": {"true" if request.user.is_authenticated else "false"}}};\n')
    response = HttpResponse(config + WIDGET_JS.read_text(), content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=60"
    return response


@never_cache
@ensure_csrf_cookie
@login_required(login_url=LOGIN)
def chat_page(request: HttpRequest) -> HttpResponse:
    return render(request, "chat_app/page.html")


@never_cache
@login_required(login_url=LOGIN)
@require_http_methods(["GET", "POST"])
def link_page(request: HttpRequest) -> HttpResponse:
    """Shows a one-time code that links a Slack/Teams/Telegram identity to the signed-in account."""
    code = expires = None
    if request.method == "POST":
        if "unlink" in request.POST:
            pk = request.POST["unlink"]
            identity = (ChatIdentity.objects.filter(pk=int(pk), user=request.user).exclude(channel="web").first()
                        if pk.isdigit() and len(pk) < 19 else None)
            if identity is not None:
                services.identity_unlink(identity=identity)
        else:
            code, expires = services.link_code_create(user=request.user)
    identities = ChatIdentity.objects.filter(user=request.user).exclude(channel="web").order_by("channel")
    return render(request, "chat_app/link.html", {"code": code, "expires": expires, "identities": identities})
