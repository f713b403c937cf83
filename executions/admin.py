"""Admin for processes (pause/resume, "Run now") and executions (read-only history, cancel/retry)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from guardian.admin import GuardedModelAdmin

from executions import access, hooks, services
from executions.actors import Actor
from executions.errors import HeptoraError, InvalidParameters
from executions.models import EventKind, Execution, ExecutionSource, ExecutionStatus, Process


class RunNowForm(forms.Form):
    notify_email = forms.EmailField(required=False, label="Notify e-mail")
    timeout = forms.IntegerField(required=False, min_value=1, help_text="Seconds; empty for the process default.")


@admin.register(Process)
class ProcessAdmin(GuardedModelAdmin):
    list_display = ("slug", "name", "steps", "default_timeout", "paused_flag", "is_registered", "owner", "run_link")
    list_filter = ("is_paused", "is_registered")
    search_fields = ("slug", "name", "description")
    readonly_fields = ("slug", "name", "description", "steps", "default_timeout", "critical", "is_registered",
                       "paused_at", "created_at", "updated_at")
    fields = ("slug", "name", "description", "steps", "default_timeout", "critical", "is_registered", "owner",
              "is_paused", "pause_reason", "paused_at", "created_at", "updated_at")
    actions = ["pause_processes", "resume_processes"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # processes are defined in code and synced

    def has_delete_permission(self, request: HttpRequest, obj: Process | None = None) -> bool:
        return False  # executions refer to them; pause instead

    @admin.display(description="paused", boolean=True)
    def paused_flag(self, obj: Process) -> bool:
        return obj.is_paused

    @admin.display(description="")
    def run_link(self, obj: Process) -> str:
        url = reverse("admin:executions_process_run", args=[obj.pk])
        return format_html('<a class="button" href="{}">Run now</a>', url)

    def save_model(self, request: HttpRequest, obj: Process, form: Any, change: bool) -> None:
        if "is_paused" in form.changed_data:
            (services.process_pause(process=obj, reason=obj.pause_reason) if obj.is_paused
             else services.process_resume(process=obj))
        super().save_model(request, obj, form, change)

    @admin.action(description="Pause selected processes (refuse new starts)", permissions=["change"])
    def pause_processes(self, request: HttpRequest, queryset: QuerySet[Process]) -> None:
        for process in queryset:
            services.process_pause(process=process, reason=f"paused by {request.user.get_username()}")
        self.message_user(request, f"Paused {queryset.count()} process(es).", messages.SUCCESS)

    @admin.action(description="Resume selected processes", permissions=["change"])
    def resume_processes(self, request: HttpRequest, queryset: QuerySet[Process]) -> None:
        for process in queryset:
            services.process_resume(process=process)
        self.message_user(request, f"Resumed {queryset.count()} process(es).", messages.SUCCESS)

    def get_urls(self) -> list[Any]:
        run = self.admin_site.admin_view(self.run_view)
        return [path("<int:pk>/run/", run, name="executions_process_run"), *super().get_urls()]

    def run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        process = get_object_or_404(Process, pk=pk)
        actor = Actor.for_user(request.user)
        definition = hooks.parameter_definition()
        params_form_class = definition.form_class(process) if definition else forms.Form
        data = request.POST if request.method == "POST" else None
        params_form = params_form_class(data, prefix="p")
        run_form = RunNowForm(data)
        if not access.process_can_execute(actor, process):
            messages.error(request, f"You are not allowed to start the process '{process.slug}'.")
        elif request.method == "POST" and run_form.is_valid():
            raw = {name: request.POST.get(f"p-{name}") for name in params_form.fields
                   if request.POST.get(f"p-{name}") not in (None, "")}
            try:
                execution = services.execution_start(
                    process_id=process.slug, parameters=raw, source=ExecutionSource.MANUAL, actor=actor,
                    notify_email=run_form.cleaned_data["notify_email"] or "",
                    timeout=run_form.cleaned_data["timeout"],
                )
            except InvalidParameters as exc:
                # The launch path is the authority: show its messages, not the form's own second opinion.
                params_form.is_valid()
                params_form.errors.clear()
                for name, errors in exc.field_errors.items():
                    params_form.add_error(name if name in params_form.fields else None, errors)
            except HeptoraError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Started {execution.public_id}: {execution.get_status_display()}.")
                return HttpResponseRedirect(reverse("admin:executions_execution_change", args=[execution.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Run {process.name}",
            "process": process,
            "params_form": params_form,
            "run_form": run_form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/executions/process/run.html", context)


EVENTS_SHOWN = 200


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("public_id", "process", "status", "progress_text", "source", "actor_label", "created_at",
                    "duration")
    list_filter = ("status", "process", "source", "created_at")
    search_fields = ("public_id", "actor_label", "process__slug")
    date_hierarchy = "created_at"
    list_select_related = ("process",)
    actions = ["cancel_executions", "retry_executions"]
    readonly_fields = [f.name for f in Execution._meta.fields] + [
        "progress_text", "duration", "failure_details", "events_log"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Execution]:
        # The same rule as every other door: own executions, plus the processes one may oversee.
        return access.executions_visible_to(Actor.for_user(request.user)).select_related("process", "retry_of")

    def has_view_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        if obj is not None:
            return access.execution_can_view(Actor.for_user(request.user), obj)
        return super().has_view_permission(request) or access.oversees_any_process(Actor.for_user(request.user))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    @admin.display(description="failure details (for operators)")
    def failure_details(self, obj: Execution) -> str:
        failure = obj.events.filter(kind=EventKind.STATUS, data__status=ExecutionStatus.FAILED).last()
        trace = (failure.data.get("traceback") if failure else "") or ""
        if not trace:
            return "-"
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', trace)

    @admin.display(description="events")
    def events_log(self, obj: Execution) -> str:
        total = obj.events.count()
        events = list(obj.events.order_by("-id")[:EVENTS_SHOWN])[::-1]
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.level, e.message)
             for e in events),
        )
        note = ""
        if total > EVENTS_SHOWN:
            note = format_html("<p>The last {} of {} events; all of them: <code>manage.py show_execution {}</code>"
                               "</p>", EVENTS_SHOWN, total, obj.public_id)
        return format_html("{}<table><thead><tr><th>time</th><th>kind</th><th>level</th><th>message</th></tr>"
                           "</thead><tbody>{}</tbody></table>", note, rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False  # history: shown, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False

    @admin.display(description="duration")
    def duration(self, obj: Execution) -> str:
        seconds = obj.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f} s"

    @admin.action(description="Cancel selected executions", permissions=["view"])
    def cancel_executions(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        self._each(request, queryset, lambda e, actor: services.execution_cancel(execution=e, actor=actor), "cancel")

    @admin.action(description="Retry selected executions (as new executions)", permissions=["view"])
    def retry_executions(self, request: HttpRequest, queryset: QuerySet[Execution]) -> None:
        self._each(request, queryset, lambda e, actor: services.execution_retry(
            execution=e, actor=actor, source=ExecutionSource.MANUAL), "retry")

    def _each(self, request: HttpRequest, queryset: QuerySet[Execution], act: Any, verb: str) -> None:
        actor = Actor.for_user(request.user)
        done = 0
        for execution in queryset.select_related("process"):
            try:
                act(execution, actor)
                done += 1
            except HeptoraError as exc:
                self.message_user(request, exc.message, messages.WARNING)
        if done:
            self.message_user(request, f"{verb.capitalize()} requested for {done} execution(s).", messages.SUCCESS)
