"""Managers decide in Django admin: a queue of the requests they may decide, approve/reject with a comment."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from approvals import services
from approvals.models import ApprovalPolicy, ApprovalRequest, ApprovalStatus, ApprovalVote, Vote
from executions.models import ExecutionSource


class ApprovalPolicyForm(forms.ModelForm):
    exempt_sources = forms.MultipleChoiceField(
        choices=ExecutionSource.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Start methods that skip approval (the API may be exempt).",
    )

    class Meta:
        model = ApprovalPolicy
        fields = ["process", "required", "exempt_sources", "approver_groups", "approver_users", "quorum",
                  "quorum_count", "timeout_seconds", "reminder_before_seconds", "on_timeout", "escalation_groups",
                  "escalation_timeout_seconds"]


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    form = ApprovalPolicyForm
    list_display = ["process", "required", "quorum", "timeout_seconds", "on_timeout"]
    filter_horizontal = ["approver_groups", "approver_users", "escalation_groups"]
    fieldsets = [
        (None, {"fields": ["process", "required", "exempt_sources"]}),
        ("Approvers", {"fields": ["approver_groups", "approver_users", "quorum", "quorum_count"]}),
        ("Deadline", {"fields": ["timeout_seconds", "reminder_before_seconds", "on_timeout", "escalation_groups",
                                 "escalation_timeout_seconds"]}),
    ]


class VoteInline(admin.TabularInline):
    model = ApprovalVote
    extra = 0
    can_delete = False
    fields = ["approver", "decision", "comment", "via", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PendingFirst(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*ApprovalStatus.choices, ("all", "All")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value() or ApprovalStatus.PENDING  # the queue opens on what still needs a decision
        return queryset if value == "all" else queryset.filter(status=value)

    def choices(self, changelist: Any) -> Any:
        current = self.value() or ApprovalStatus.PENDING
        for value, label in self.lookup_choices:
            query = changelist.get_query_string({self.parameter_name: value})
            yield {"selected": current == value, "query_string": query, "display": label}


class DecisionForm(forms.Form):
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ["execution_id", "process", "requester", "age", "time_left", "status", "votes_summary"]
    list_filter = [PendingFirst, "execution__process"]
    search_fields = ["execution__public_id", "execution__actor_label"]
    readonly_fields = ["execution_link", "process", "requester", "parameters", "status", "required_votes",
                       "deadline", "time_left", "escalated_at", "decided_at", "decision_comment"]
    fields = readonly_fields
    inlines = [VoteInline]
    actions = ["approve_selected", "reject_selected"]
    change_form_template = "approvals/admin/change_form.html"

    # --- Who sees what: only the requests this person may decide (guardian object permissions) ---

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApprovalRequest]:
        if request.user.has_perm("approvals.view_approvalrequest"):  # auditors see every request
            return super().get_queryset(request).select_related("execution", "execution__process")
        return services.approvals_decidable_by(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if not (request.user.is_active and request.user.is_staff):
            return False
        if request.user.has_perm("approvals.view_approvalrequest"):
            return True
        if obj is None:
            return True  # the list is filtered by get_queryset
        return services.approval_can_decide(request.user, obj) or obj.votes.filter(approver=request.user).exists()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Actions normally need the change permission; deciding needs the decide permission instead.
        for name in ("approve_selected", "reject_selected"):
            func = getattr(type(self), name)
            actions[name] = (func, name, func.short_description)
        return actions

    # --- Columns ---

    @admin.display(description="execution", ordering="execution__public_id")
    def execution_id(self, obj: ApprovalRequest) -> str:
        return obj.execution.public_id

    @admin.display(description="execution")
    def execution_link(self, obj: ApprovalRequest) -> str:
        url = reverse("admin:executions_execution_change", args=[obj.execution.pk])
        return format_html('<a href="{}">{}</a>', url, obj.execution.public_id)

    @admin.display(description="process", ordering="execution__process__name")
    def process(self, obj: ApprovalRequest) -> str:
        return obj.execution.process.name

    @admin.display(description="requested by", ordering="execution__actor_label")
    def requester(self, obj: ApprovalRequest) -> str:
        return f"{obj.execution.actor_label} via {obj.execution.get_source_display()}"

    @admin.display(description="parameters")
    def parameters(self, obj: ApprovalRequest) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.execution.parameters, indent=2, ensure_ascii=False))

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: ApprovalRequest) -> str:
        return _duration(timezone.now() - obj.created_at)

    @admin.display(description="time left", ordering="deadline")
    def time_left(self, obj: ApprovalRequest) -> str:
        if obj.status != ApprovalStatus.PENDING:
            return "—"
        left = obj.deadline - timezone.now()
        return _duration(left) if left.total_seconds() > 0 else "overdue"

    @admin.display(description="votes")
    def votes_summary(self, obj: ApprovalRequest) -> str:
        approvals = sum(1 for v in obj.votes.all() if v.decision == Vote.APPROVE)
        return f"{approvals}/{obj.required_votes}"

    # --- Deciding: bulk actions with a comment, and buttons on the request's page ---

    @admin.action(description="Approve selected requests")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._bulk(request, queryset, Vote.APPROVE)

    @admin.action(description="Reject selected requests")
    def reject_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._bulk(request, queryset, Vote.REJECT)

    def _bulk(self, request: HttpRequest, queryset: QuerySet, decision: str) -> HttpResponse | None:
        form = DecisionForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            done, refused = [], []
            for approval in queryset.select_related("execution", "execution__process"):
                try:
                    services.approval_decide(request=approval, approver=request.user, decision=decision,
                                             comment=form.cleaned_data["comment"], via="admin")
                    done.append(approval.execution.public_id)
                except (services.ApprovalDenied, services.ApprovalClosed) as exc:
                    refused.append(exc.message)
            verb = "Approved" if decision == Vote.APPROVE else "Rejected"
            if done:
                self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
            for reason in refused:
                self.message_user(request, reason, messages.ERROR)
            return None
        return TemplateResponse(request, "approvals/admin/decide_bulk.html", {
            **self.admin_site.each_context(request), "title": f"{decision.title()} {queryset.count()} request(s)",
            "approvals": queryset, "decision": decision, "form": form, "action": f"{decision}_selected",
            "opts": self.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        })

    def get_urls(self) -> list[Any]:
        return [path("<int:pk>/decide/", self.admin_site.admin_view(self.decide_view),
                     name="approvals_approvalrequest_decide"), *super().get_urls()]

    def decide_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        approval = self.get_queryset(request).filter(pk=pk).first()
        change_url = reverse("admin:approvals_approvalrequest_change", args=[pk])
        if request.method != "POST" or approval is None or request.POST.get("decision") not in Vote.values:
            return HttpResponseRedirect(change_url)
        form = DecisionForm(request.POST)
        comment = form.cleaned_data["comment"] if form.is_valid() else ""
        try:
            services.approval_decide(request=approval, approver=request.user, decision=request.POST["decision"],
                                     comment=comment, via="admin")
        except (services.ApprovalDenied, services.ApprovalClosed) as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(change_url)
        verb = "Approved" if request.POST["decision"] == Vote.APPROVE else "Rejected"
        self.message_user(request, f"{verb} {approval.execution.public_id}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:approvals_approvalrequest_changelist"))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        approval = self.get_queryset(request).filter(pk=object_id).first()
        can_decide = bool(
            approval and approval.status == ApprovalStatus.PENDING and approval.deadline > timezone.now()
            and services.approval_can_decide(request.user, approval)
            and not approval.votes.filter(approver=request.user).exists()
        )
        extra = {**(extra_context or {}), "can_decide": can_decide, "decision_form": DecisionForm(),
                 "decide_url": reverse("admin:approvals_approvalrequest_decide", args=[object_id])}
        return super().change_view(request, object_id, form_url, extra_context=extra)


def _duration(delta: Any) -> str:
    minutes = int(abs(delta.total_seconds()) // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
