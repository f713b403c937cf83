"""The web forms in the browser: list, form, tracking page, "My requests", sign-in pages, error pages.

Thin: each view asks forms_app.services / executions (through forms_app.web) and renders. Who may use a
form is form_can_use's answer; who may see an execution is executions.access's (plus, for an anonymous
visitor, the executions this browser session started).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from executions import access
from executions.errors import HeptoraError, InvalidParameters, LaunchDenied, ProcessPaused
from executions.models import ExecutionStatus
from executions.selectors import execution_as_dict
from forms_app import services, web
from forms_app.models import FormDefinition

PAGE_SIZE = 20


def home(request: HttpRequest) -> HttpResponse:
    """Staff land in admin; everybody else on the forms they may use."""
    if request.user.is_authenticated and request.user.is_staff:
        return redirect("/admin/")
    return redirect("forms_app:list")


@require_GET
def form_list(request: HttpRequest) -> HttpResponse:
    forms = services.forms_usable_by(request.user)
    return render(request, "forms_app/form_list.html", {"forms": forms})


def _form_or_404(slug: str) -> FormDefinition:
    try:
        return services.form_get(slug)
    except services.FormNotFound:
        raise Http404("No such form") from None


def _no_access(request: HttpRequest, form: FormDefinition, reason: str = "") -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return render(request, "forms_app/no_access.html", {"form": form, "reason": reason}, status=403)


def _render_form(
    request: HttpRequest, form: FormDefinition, *, values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None, token: str = "", notice: str = "", paused: bool = False,
    status: int = 200,
) -> HttpResponse:
    fields = services.form_web_fields(form)
    after_error = errors is not None
    web.session_key(request)  # an anonymous visitor's session exists before they send: one actor per page
    if values is None:
        values = services.form_initial(form, request.user)
    bound = web.fields_for_template(fields, values, errors or {}, after_error=after_error)
    context = {
        "form": form,
        "fields": bound,
        "summary": web.error_summary(bound, errors or {}),
        "notice": notice,
        "paused": paused or form.process.is_paused,
        "token": token or services.form_new_submission_token(),
        "token_field": web.TOKEN_FIELD,
        "multipart": any(f["type"] == "file" for f in bound),
    }
    return render(request, "forms_app/form.html", context, status=status)


@csrf_exempt  # checked by _form_post, after the size check (Django's documented pattern for uploads)
@never_cache
@require_http_methods(["GET", "POST"])
def form_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = _form_or_404(slug)
    if not services.form_can_use(request.user, form):
        return _no_access(request, form)
    if request.method == "GET":
        return _render_form(request, form)
    limit = web.request_limit_bytes(services.form_web_fields(form))
    too_big = f"What you sent is too large (at most {limit // (1024 * 1024)} MB in all). Choose a smaller " \
              "file and send the form again."
    if web.content_length(request) > limit:
        # Refused before reading the body; nothing is written, so the CSRF check is not needed to answer.
        return _render_form(request, form, errors={"__all__": [too_big]}, status=413)
    try:
        return _form_post(request, form)
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
        return _render_form(request, form, errors={"__all__": [too_big]}, status=413)


@csrf_protect
def _form_post(request: HttpRequest, form: FormDefinition) -> HttpResponse:
    fields = services.form_web_fields(form)
    values = web.posted_values(fields, request.POST)
    token = request.POST.get(web.TOKEN_FIELD, "")
    if not web.submission_token_valid(token):
        return _render_form(request, form, values=values, errors={},
                            notice="This page had expired. Check your answers and send the form again.")
    file_names = {f["name"] for f in fields if f.get("type") == "file"}
    files = {name: upload for name, upload in request.FILES.items() if name in file_names}
    submitter = services.Submitter(user=request.user, session_key=web.session_key(request))
    try:
        execution = services.form_submit(form, data=values, files=files, submitter=submitter,
                                         submission_token=token, tracking_url=web.tracking_url(request))
    except InvalidParameters as exc:
        return _render_form(request, form, values=values, errors=exc.field_errors, token=token)
    except ProcessPaused:
        return _render_form(request, form, values=values, paused=True, status=409)
    except LaunchDenied as exc:
        return _no_access(request, form, exc.message)
    except services.FormNotFound:
        raise Http404("No such form") from None
    web.session_runs_remember(request, execution.public_id)
    messages.success(request, form.success_message or "Your request was sent.", extra_tags="submitted")
    return redirect("forms_app:run", execution_id=execution.public_id)


@never_cache
@require_GET
def run_page(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = web.execution_for_visitor(request, execution_id)
    can_retry = web.execution_can_retry(request, execution)
    form = FormDefinition.objects.filter(process=execution.process).first()
    context = {
        "execution": execution,
        "data": execution_as_dict(execution),
        "status": web.execution_status(execution, can_retry=can_retry),
        "can_retry": can_retry,
        "form": form,
        "retry_statuses": [s.value for s in web.RETRY_STATUSES],
    }
    return render(request, "forms_app/run.html", context)


@never_cache
@require_GET
def run_status(request: HttpRequest, execution_id: str) -> JsonResponse:
    execution = web.execution_for_visitor(request, execution_id)
    return JsonResponse(web.execution_status(execution, can_retry=web.execution_can_retry(request, execution)))


@require_POST
def run_retry(request: HttpRequest, execution_id: str) -> HttpResponse:
    execution = web.execution_for_visitor(request, execution_id)
    if not web.execution_can_retry(request, execution):
        messages.error(request, "This request cannot be started again.")
        return redirect("forms_app:run", execution_id=execution.public_id)
    try:
        submitter = services.Submitter(user=request.user, session_key=web.session_key(request))
        retry = services.form_retry(execution, submitter=submitter)
    except HeptoraError as exc:
        messages.error(request, exc.message)
        return redirect("forms_app:run", execution_id=execution.public_id)
    web.session_runs_remember(request, retry.public_id)
    messages.success(request, f"Started again as {retry.public_id}.")
    return redirect("forms_app:run", execution_id=retry.public_id)


@login_required
@require_GET
def my_runs(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    executions = access.executions_visible_to(web.actor_for(request)).filter(actor_user=request.user)
    if status in ExecutionStatus.values:
        executions = executions.filter(status=status)
    else:
        status = ""
    page = Paginator(executions.order_by("-created_at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"page": page, "status": status, "statuses": ExecutionStatus.choices}
    return render(request, "forms_app/my_runs.html", context)


# --- Sign in and out, error pages ------------------------------------------------------------------------


class LoginView(auth_views.LoginView):
    template_name = "forms_app/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST signs out (Django's rule); GET shows a button to do it instead of an error page."""

    http_method_names = ["get", "post", "options"]
    template_name = "forms_app/logged_out.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return render(request, "forms_app/logout.html")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent from a page that had been open too long (or without cookies): say how to fix it."""
    return render(request, "403_csrf.html", {"back": request.path}, status=403)
