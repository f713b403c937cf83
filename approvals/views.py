"""The decision page an approver reaches from the e-mail link. Opening it decides nothing; the approver's
own POST (signed in, CSRF-protected) does."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalStatus, Vote


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=Vote.choices)
    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


@login_required
def decide(request: HttpRequest, token: str) -> HttpResponse:
    context = admin.site.each_context(request)
    try:
        approval = services.approval_from_link(token, request.user)
    except services.ApprovalNotFound as exc:
        return render(request, "approvals/decide_error.html", {**context, "message": exc.message}, status=404)
    except services.ApprovalDenied as exc:
        return render(request, "approvals/decide_error.html", {**context, "message": exc.message}, status=403)
    form = DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.approval_decide(request=approval, approver=request.user, decision=form.cleaned_data["decision"],
                                     comment=form.cleaned_data["comment"], via="link")
        except (services.ApprovalDenied, services.ApprovalClosed) as exc:
            messages.error(request, exc.message)
        else:
            word = "approved" if form.cleaned_data["decision"] == Vote.APPROVE else "rejected"
            messages.success(request, f"You {word} {approval.execution.public_id}.")
        return redirect(request.path)
    approval.refresh_from_db()
    can_decide = (approval.status == ApprovalStatus.PENDING and approval.deadline > timezone.now()
                  and services.approval_can_decide(request.user, approval)
                  and not approval.votes.filter(approver=request.user).exists())
    return render(request, "approvals/decide.html", {
        **context, "approval": approval, "execution": approval.execution, "form": form, "can_decide": can_decide,
        "votes": approval.votes.select_related("approver"), "title": f"Approve {approval.execution.public_id}?",
    })
