"""Approve or reject an execution that awaits approval, for callers who are among its approvers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from api_app import serializers
from api_app.callers import SCOPE_EXECUTE
from api_app.views.base import HeptoraAPIView
from api_app.views.executions import ExecutionAccessMixin, execution_body
from approvals import services as approvals
from approvals.models import ApprovalRequest, Vote
from executions.errors import LaunchDenied

DECISION_RESPONSES = {
    200: serializers.ExecutionDetail,
    400: OpenApiResponse(description="The body is not valid (an unknown field, a comment over 2,000 characters)."),
    403: OpenApiResponse(description="You are not one of its approvers, or you started it yourself."),
    404: OpenApiResponse(description="No such execution that you may see or decide."),
    409: OpenApiResponse(description="Already decided, expired, or you have voted already."),
}


class DecisionView(ExecutionAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE
    decision = Vote.APPROVE

    def decide(self, request: Request, execution_id: str) -> Response:
        body = serializers.DecisionRequest(data=request.data)
        body.is_valid(raise_exception=True)
        approval = self._approval(request, execution_id)
        user = self.actor.user
        if user is None:
            raise LaunchDenied("Only a caller acting for a person can approve or reject; this one has no user.")
        approvals.approval_decide(request=approval, approver=user, decision=self.decision,
                                  comment=body.validated_data["comment"], via="api")
        approval.execution.refresh_from_db()
        return Response(execution_body(approval.execution), status=status.HTTP_200_OK)

    def _approval(self, request: Request, execution_id: str) -> ApprovalRequest:
        """The request, found by whoever may decide it or see the execution; 404 for anyone else."""
        self.execution_id = execution_id
        try:
            approval = approvals.approval_for_execution(execution_id)
        except approvals.ApprovalNotFound:
            approval = None
        user = self.actor.user
        decider = approval is not None and user is not None and (
            approvals.approval_can_decide(user, approval) or approval.execution.actor_user_id == user.pk)
        if approval is None or not (decider or self.visible(request).filter(public_id=execution_id).exists()):
            if approval is None and self.visible(request).filter(public_id=execution_id).exists():
                raise NotFound(f"{execution_id} does not need approval; there is nothing to decide.")
            raise NotFound(f"There is no execution with id '{execution_id}' that you may see.")
        return approval


class ExecutionApproveView(DecisionView):
    decision = Vote.APPROVE

    @extend_schema(operation_id="executions_approve", request=serializers.DecisionRequest,
                   summary="Approve an execution awaiting approval", responses=DECISION_RESPONSES)
    def post(self, request: Request, execution_id: str) -> Response:
        return self.decide(request, execution_id)


class ExecutionRejectView(DecisionView):
    decision = Vote.REJECT

    @extend_schema(operation_id="executions_reject", request=serializers.DecisionRequest,
                   summary="Reject an execution awaiting approval (it ends 'rejected')", responses=DECISION_RESPONSES)
    def post(self, request: Request, execution_id: str) -> Response:
        return self.decide(request, execution_id)
